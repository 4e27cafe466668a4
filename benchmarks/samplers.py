"""Sampler benchmark on analytic Gaussian mixtures with their exact denoiser.

Every sampler x sigma grid x NFE budget is run on the 2-D ring and a 16-D random mixture. Because
the denoiser is exact, the error is the sampler's own: sliced W2 against fresh true samples, and
the NLL per dimension of the samples under the true mixture next to the data's own NLL (the
"floor" row gives both for true samples).

    python benchmarks/samplers.py            # full table, results/samplers.json
    python benchmarks/samplers.py --quick    # fewer samples, NFE in {10, 20}
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from polydiff.gmm import GaussianMixture, random_mixture, ring, sliced_wasserstein
from polydiff.samplers import BUILTIN_SAMPLERS
from polydiff.sampling import sample
from polydiff.schedules import BUILTIN_SCHEDULES, GRIDS, Schedule

SCHEDULES: dict[str, type[Schedule]] = {cls.name: cls for cls in BUILTIN_SCHEDULES}


def _nll(mix: GaussianMixture, x: torch.Tensor) -> float:
    return float(-mix.log_prob(x).mean()) / mix.dim


def run(*, n: int, nfes: list[int], schedule: Schedule, samplers: list[str], grids: list[str],
        seed: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for data_name, mix in (("ring2d", ring()), ("mixture16d", random_mixture())):
        ref = mix.sample(n, torch.Generator().manual_seed(seed + 1))[0]
        other = mix.sample(n, torch.Generator().manual_seed(seed + 2))[0]
        rows.append({"data": data_name, "sampler": "floor", "grid": "-", "budget": 0, "nfe": 0, "steps": 0,
                     "sliced_w2": sliced_wasserstein(other, ref), "nll": _nll(mix, other),
                     "data_nll": _nll(mix, ref), "seconds": 0.0})
        for spec in (s for s in BUILTIN_SAMPLERS if s.name in samplers):
            for grid in grids:
                for nfe in nfes:
                    steps = spec.steps_for_nfe(nfe)
                    start = time.perf_counter()
                    res = sample(mix.denoise, shape=(mix.dim,), n=n, seed=seed, sampler=spec, schedule=schedule,
                                 steps=steps, grid=grid)
                    finite = bool(torch.isfinite(res.x).all())
                    rows.append({"data": data_name, "sampler": spec.name, "grid": grid, "budget": nfe, "nfe": res.nfe,
                                 "steps": steps,
                                 "sliced_w2": sliced_wasserstein(res.x, ref) if finite else None,
                                 "nll": _nll(mix, res.x) if finite else None, "data_nll": _nll(mix, ref),
                                 "seconds": time.perf_counter() - start})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Aligned text table: one line per (data, sampler, grid), sliced W2 and NLL gap per NFE budget
    (Heun spends one evaluation less than an even budget: its last step is a single call)."""
    nfes = sorted({r["budget"] for r in rows if r["sampler"] != "floor"})
    head = f"{'data':<11} {'sampler':<15} {'grid':<10}" + "".join(f" {'W2@' + str(k):>8}" for k in nfes) + \
        "".join(f" {'dNLL@' + str(k):>9}" for k in nfes)
    lines = [head, "-" * len(head)]
    groups: dict[tuple[str, str, str], dict[int, dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["sampler"], r["grid"]), {})[r["budget"]] = r
    for (data, sampler, grid), by_nfe in groups.items():
        if sampler == "floor":
            f = by_nfe[0]
            lines.append(f"{data:<11} {'(true samples)':<15} {'-':<10} W2 floor {f['sliced_w2']:.4f}, "
                         f"data NLL {f['data_nll']:.4f} nats/dim")
            continue
        ok = {k: r for k, r in by_nfe.items() if r["nll"] is not None}  # None: non-finite samples
        w2 = "".join(f" {ok[k]['sliced_w2']:8.4f}" if k in ok else f" {'nan':>8}" for k in nfes)
        gap = "".join(f" {ok[k]['nll'] - ok[k]['data_nll']:9.3f}" if k in ok else f" {'nan':>9}" for k in nfes)
        lines.append(f"{data:<11} {sampler:<15} {grid:<10}{w2}{gap}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="500 samples, NFE 10 and 20 only")
    p.add_argument("--n", type=int, help="samples per run (default 2000, quick 500)")
    p.add_argument("--nfe", type=int, nargs="+", help="NFE budgets (default 5 10 20 50)")
    p.add_argument("--schedule", default="edm", choices=sorted(SCHEDULES), help="forward process (default edm)")
    p.add_argument("--samplers", nargs="+", default=[s.name for s in BUILTIN_SAMPLERS])
    p.add_argument("--grids", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "samplers.json",
                   help="JSON output path")
    args = p.parse_args(argv)
    unknown = set(args.samplers) - {s.name for s in BUILTIN_SAMPLERS}
    if unknown:
        p.error(f"unknown sampler(s) {sorted(unknown)}; valid: {[s.name for s in BUILTIN_SAMPLERS]}")
    n = args.n or (500 if args.quick else 2000)
    nfes = args.nfe or ([10, 20] if args.quick else [5, 10, 20, 50])
    schedule = SCHEDULES[args.schedule]()
    start = time.perf_counter()
    rows = run(n=n, nfes=nfes, schedule=schedule, samplers=args.samplers, grids=args.grids, seed=args.seed)
    print(f"schedule {schedule!r}, n={n}; W2 = sliced W2 to true samples (lower is better), "
          "dNLL = NLL of samples under the true mixture minus the data's own (0 is ideal), nats/dim")
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"schedule": repr(schedule), "n": n, "seed": args.seed, "rows": rows},
                                   indent=1) + "\n")
    print(f"wrote {args.out} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
