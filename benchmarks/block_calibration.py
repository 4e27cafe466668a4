"""Block-gap calibration on the given entries, two ways, over several test mask seeds (one model):

* ``away``: ``block`` drawn on the given entries only, each calibration gap placed where it does not touch
  a real gap (``block_calibration`` without ``fill``, the way before 2026-12-05);
* ``samples``: the real gaps show one of the model's own samples as given values and ``block`` is drawn on
  the whole series as for the real task, scored on the given entries inside it (``fill``, the default).

The test coverage of one mask draw of a few windows is noisy (CO2: 8 windows, one gap each), so the table
averages several mask seeds; one factor per test mask draw, as ``benchmarks/timeseries.py``::

    OMP_NUM_THREADS=1 python benchmarks/block_calibration.py --dataset co2 --budget 600 --seeds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch

import timeseries as bench  # benchmarks/timeseries.py, beside this script
from polydiff import plugins
from polydiff.diffusion.calibration import calibration_task
from polydiff.diffusion.imputation import coverage_90, impute


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="co2", choices=["ambient_nox", "co2", "macro_csv"])
    p.add_argument("--budget", type=float, default=600, help="training CPU seconds (time.process_time)")
    p.add_argument("--seeds", type=int, default=3, help="test mask seeds (1234, 1334, ...)")
    p.add_argument("--mask-draws", type=int, default=8, help="masks per test window and seed")
    p.add_argument("--out", default=str(bench.RESULTS / "block_calibration.json"))
    a = p.parse_args()
    torch.set_num_threads(1)
    args = argparse.Namespace(budget=a.budget, size="base", centre_condition=True, seed=0, batch_size=32, lr=2e-3,
                              ema=0.99, p_mean=-2.6, p_std=1.2, scale_noise=True, mask_draws=a.mask_draws,
                              given_draws=0, given_redraw=False, given_ratio=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        train_ds, test = bench.datasets([a.dataset], Path(tmp))[a.dataset]
    denoiser, schedule, info = bench.train(train_ds, "residual", args)
    batch = test.get_batch(torch.arange(len(test)).repeat(a.mask_draws))
    kw: dict[str, Any] = {"n_samples": 32, "sampler": "dpmpp_2m_sde", "schedule": schedule, "steps": 20,
                          "spec": test.spec, "conditional_model": True, "batch_size": 256}
    spec = plugins.get_mask_strategy("block")
    rows = []
    for s in range(a.seeds):
        mask_seed = 1234 + 100 * s
        target = bench.task_mask("block", batch.present(), mask_seed)
        with torch.no_grad():
            imp = impute(denoiser, batch, target, seed=0, **kw)
            row: dict[str, Any] = {"mask_seed": mask_seed, "targets": int(target.sum()), "raw": coverage_90(imp, test)}
            tasks, draws = bench.given_tasks("block", batch, target, mask_seed + 1, args, samples=imp.samples)
            copies = torch.arange(len(batch)).repeat(draws)  # as many draws, without the samples
            options = {"max_fraction": 0.5, "feature_prob": 0.5}
            away = calibration_task(spec, batch.select(copies), target[copies],
                                    torch.Generator().manual_seed(mask_seed + 1), options)
            for name, (cal_b, cal_t) in (("samples", tasks["_given"]), ("away", away)):
                cal = impute(denoiser, cal_b, cal_t, seed=2, **kw)
                r = bench.calibrated_per_draw(imp, cal, 32, test, len(test), "")
                row[name] = r["coverage_90_calibrated"]
                row[f"{name}_scale"] = r["scale"]
        rows.append(row)
        print(row, flush=True)
    print(f"\n{a.dataset}, {info['steps']} steps in {info['cpu_seconds']} CPU s; 90% coverage of block gaps "
          f"(bar 0.85-0.95), one factor per test mask draw:")
    print("mask seed | targets | raw | away from real gaps: scale / cov90 | samples shown: scale / cov90")
    for r in rows:
        print(f"{r['mask_seed']} | {r['targets']} | {r['raw']:.3f} | {r['away_scale']:.3g} / {r['away']:.3f} | "
              f"{r['samples_scale']:.3g} / {r['samples']:.3f}")
    print(f"mean | | {statistics.mean(r['raw'] for r in rows):.3f} | {statistics.mean(r['away'] for r in rows):.3f} | "
          f"{statistics.mean(r['samples'] for r in rows):.3f}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"dataset": a.dataset, "train": info, "rows": rows}, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
