"""Training: the diffusion objective on a batch, the trainer (EMA, precision, resume), the metrics log,
checkpoints and ``torchrun`` data parallelism."""

from __future__ import annotations

from .checkpoint import CheckpointError, latest_checkpoint, read_checkpoint
from .config import TrainConfig
from .trainer import Trainer

__all__ = ["CheckpointError", "TrainConfig", "Trainer", "latest_checkpoint", "read_checkpoint"]
