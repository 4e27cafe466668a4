"""Tiny training runs shared by the tests and run as a subprocess by them (torchrun, SIGKILL).

    python tests/train_script.py ddp OUT.safetensors     # under torchrun: two configs, final params
    python tests/train_script.py slow RUN_DIR STEPS      # checkpointed run, slowed so a test can kill it
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from polydiff import EDM, ArrayDataset, Denoiser, NoiseLevels, Parameterization, Weighting
from polydiff.diffusion.data import DiffusionDataset
from polydiff.modalities.points import load_mixture, load_ring
from polydiff.nn.layers import build_mlp
from polydiff.training.trainer import TrainConfig, Trainer


def masked_mixture(n: int = 256) -> ArrayDataset:
    """A 16-D mixture with ~30% of the entries missing, for conditional (masked) training."""
    base = load_mixture(n=n, dim=16, modes=3)
    observed = (torch.rand(base.x.shape, generator=torch.Generator().manual_seed(1)) > 0.3).float()
    return ArrayDataset(base.spec, base.x * observed, observed=observed, labels=base.labels)


def make_trainer(kind: str, *, run_dir: str | Path | None = None, dataset: DiffusionDataset | None = None,
                 **overrides: Any) -> Trainer:
    """``kind``: ``"labels"`` (class-conditional ring with label dropout) or ``"masked"`` (CSDI-style)."""
    conditional = kind == "masked"
    ds = dataset or (masked_mixture() if conditional else load_ring(n=300))
    torch.manual_seed(0)  # the same initial weights in every process
    net = build_mlp(ds, width=32, depth=2, emb_dim=16, class_cond=not conditional, conditional=conditional)
    cfg = dict(steps=12, batch_size=16, lr=3e-3, warmup_steps=3, ema_decay=0.9, grad_clip=1.0, log_every=4,
               checkpoint_every=1000, device="cpu", seed=7, label_dropout=0.3, conditional=conditional)
    cfg.update(overrides)
    return Trainer(denoiser=Denoiser(net, Parameterization(sigma_data=0.5)), dataset=ds, schedule=EDM(),
                   noise_levels=NoiseLevels(kind="lognormal"), weighting=Weighting(kind="edm"),
                   config=TrainConfig(**cfg), run_dir=run_dir)


def params(trainer: Trainer) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v.detach().clone() for k, v in trainer.model.state_dict().items()}
    out.update({f"ema.{k}": v.detach().clone() for k, v in trainer.ema_state_dict().items()})
    return out


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "ddp":
        import torch.distributed as dist

        # the script owns the process group, so two trainers can run in one job
        dist.init_process_group("gloo")
        torch.set_num_threads(1)
        result: dict[str, torch.Tensor] = {}
        for kind in ("labels", "masked"):
            trainer = make_trainer(kind)
            trainer.fit(progress=False)
            assert dist.is_initialized(), "a Trainer destroyed a process group it did not create"
            result.update({f"{kind}.{k}": v for k, v in params(trainer).items()})
        dist.destroy_process_group()
        # a Trainer that creates the group destroys it when fit ends, and re-creates it for a second fit or save
        trainer = make_trainer("labels", steps=5)
        trainer.fit(progress=False)
        assert not dist.is_initialized()
        trainer.config = dataclasses.replace(trainer.config, steps=12)
        trainer.fit(progress=False)
        trainer.save()
        assert dist.is_initialized()
        trainer.close()
        assert not dist.is_initialized()
        result.update({f"twice.{k}": v for k, v in params(trainer).items()})
        if trainer.dist.rank == 0:
            save_file({k: v.contiguous() for k, v in result.items()}, argv[1])
    elif mode == "slow":
        trainer = make_trainer("masked", run_dir=argv[1], steps=int(argv[2]), checkpoint_every=10)
        get_batch = trainer.dataset.get_batch

        def slow_get_batch(indices: torch.Tensor) -> Any:
            time.sleep(0.01)  # gives the test time to kill the run between checkpoints; no effect on maths
            return get_batch(indices)

        trainer.dataset.get_batch = slow_get_batch  # type: ignore[method-assign]
        trainer.fit(progress=False)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
