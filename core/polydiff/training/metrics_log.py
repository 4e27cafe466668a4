"""What training logs: per-noise-level loss sums kept on the device, and ``metrics.jsonl``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polydiff.exceptions import ConfigError

from . import distributed as ddp

SIGMA_BIN_EDGES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)  # bins of the per-noise-level loss


class MetricSums:
    """Running sums of the logged quantities, on the device: no host sync until a log line."""

    def __init__(self, device: torch.device) -> None:
        self.edges = torch.log(torch.tensor(SIGMA_BIN_EDGES, device=device))
        self.nb = len(SIGMA_BIN_EDGES) + 1
        # per sigma bin: (sum of losses, count); the totals are their sums. Last row: grad-norm sum.
        self.sums = torch.zeros(self.nb + 1, 2, dtype=torch.float64, device=device)
        self.steps = 0
        bounds = [f"{a:g}-{b:g}" for a, b in itertools.pairwise(SIGMA_BIN_EDGES)]
        self.labels = [f"<{SIGMA_BIN_EDGES[0]:g}", *bounds, f">{SIGMA_BIN_EDGES[-1]:g}"]

    def add(self, loss: Tensor, sigma: Tensor, grad_norm: Tensor) -> None:
        bins = torch.bucketize(torch.log(sigma.float()), self.edges)
        self.sums.index_add_(0, bins, torch.stack([loss, torch.ones_like(loss)], dim=1).double())
        self.sums[-1, 0] += grad_norm
        self.steps += 1

    def state(self) -> dict[str, Any]:
        """The open window (sums and step count), JSON-able: saved with a checkpoint so that a resumed
        run logs the same lines as an uninterrupted one."""
        return {"sums": self.sums.tolist(), "steps": self.steps}

    def load(self, state: dict[str, Any]) -> None:
        self.sums.copy_(torch.tensor(state["sums"], dtype=torch.float64))
        self.steps = int(state["steps"])

    def flush(self, info: ddp.DistInfo) -> dict[str, Any]:
        """Global averages since the last flush (one all-reduce and one host sync)."""
        sums = ddp.all_reduce_sum(self.sums.clone(), info).tolist()
        bins = sums[:-1]
        by_sigma = {lab: s / c for lab, (s, c) in zip(self.labels, bins, strict=True) if c > 0}
        total, count = sum(s for s, _ in bins), sum(c for _, c in bins)
        row = {"loss": total / max(count, 1.0), "grad_norm": sums[-1][0] / info.world_size / max(self.steps, 1),
               "loss_by_sigma": by_sigma}
        self.sums.zero_()
        self.steps = 0
        return row


class MetricsLog:
    """``metrics.jsonl`` (rank 0): one JSON line per log period; on resume, lines past the checkpoint go.

    With ``tensorboard``, the same scalars also go to TensorBoard events in ``tensorboard/`` beside it
    (events past the checkpoint are purged on resume, like the JSON lines)."""

    def __init__(self, path: Path | None, start: int, *, tensorboard: bool = False) -> None:
        self.file = None
        self.writer: Any = None
        if path is None:
            return
        if path.exists():
            keep = [line for line in path.read_text().splitlines() if line.strip() and _step_of(line) <= start]
            path.write_text("".join(line + "\n" for line in keep))
        self.file = path.open("a")
        if tensorboard:
            self.writer = tensorboard_writer(path.parent, purge_step=start + 1 if start else None)

    def write(self, row: dict[str, Any]) -> None:
        if self.file is not None:
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()
        if self.writer is not None:
            step = int(row["step"])
            for key in ("loss", "grad_norm", "lr"):
                if key in row:
                    self.writer.add_scalar(f"train/{key}", row[key], step)
            for label, value in row.get("loss_by_sigma", {}).items():
                self.writer.add_scalar(f"loss_by_sigma/{label}", value, step)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.writer is not None:
            self.writer.close()


def tensorboard_writer(run_dir: Path, purge_step: int | None = None) -> Any:
    """A ``SummaryWriter`` on ``run_dir/tensorboard`` (tensorboard is an optional dependency)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch's module imports the tensorboard package
        raise ConfigError("train.log = 'tensorboard' needs the tensorboard package: pip install tensorboard "
                          "(or use train.log = 'jsonl')") from e
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=purge_step)


def log_pictures(run_dir: Path, step: int, pictures: list[Path]) -> None:
    """Add PNG pictures (samples, trajectories) to the run's TensorBoard events at ``step``."""
    import numpy as np
    from PIL import Image

    writer = tensorboard_writer(run_dir)
    try:
        for path in pictures:
            if path.suffix == ".png":
                image = np.asarray(Image.open(path).convert("RGB"))
                writer.add_image(f"samples/{path.stem}", image, step, dataformats="HWC")
    finally:
        writer.close()


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 0
