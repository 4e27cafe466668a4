"""What a training run is told: :class:`TrainConfig` (the ``[train]`` section of a run config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Precision = Literal["fp32", "bf16", "fp16"]
@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Training options (the ``[train]`` section of a run config).

    Args:
        steps: optimiser steps in total (a resumed run continues up to this number).
        batch_size: the GLOBAL batch; with N processes each computes ``batch_size / N`` samples.
        lr, weight_decay, betas, adam_eps: AdamW (Loshchilov & Hutter 2019).
        warmup_steps: linear LR ramp from ``lr / warmup_steps`` to ``lr`` (0: none).
        lr_decay_steps: inverse square-root decay after this many steps, ``lr / sqrt(step /
            lr_decay_steps)`` (EDM2, Karras et al. 2024, Eq. 16; it needs no total length, so it suits
            time budgets); 0: constant.
        ema_decay: EMA of the weights, ``ema = d * ema + (1 - d) * theta`` after every step, kept in fp32.
        ema_warmup: use ``d = min(ema_decay, (1 + step) / (10 + step))``, so the EMA of a short run
            follows the weights instead of averaging in the random initialisation (a 300-step run
            with ``d = 0.999`` would otherwise sample from weights 74% initial).
        grad_clip: clip the global gradient norm to this (0: no clipping; the norm is still logged).
        precision: autocast dtype of the forward pass; ``fp16`` uses a GradScaler and needs CUDA.
        checkpoint_every, keep_checkpoints: checkpoint period in steps, and how many to keep.
        log_every: period of the ``metrics.jsonl`` lines (averages over the period).
        seed: fixes the data order and every random draw.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        label_dropout: probability that a class label becomes -1 (classifier-free guidance).
        conditional: train a masked conditional model (CSDI-style) with ``mask_strategy``.
        mask_strategy, mask_options: the target-mask strategy (a name in the registry) and its options.
        max_minutes: stop early after this much training wall time (a checkpoint is written at the
            stop; ``None``: train to ``steps``). For budgets in time, e.g. comparison grids.
        max_cpu_seconds: stop early after this much CPU time of this process (``time.process_time``)
            in ``fit`` since the Trainer was made: a budget that stays comparable on a busy machine.
        threads: CPU threads for torch in this process (``torch.set_num_threads``; ``None``: torch's
            default). On a shared or small machine 1 thread can be several times faster.
        log: ``jsonl`` writes ``metrics.jsonl``; ``tensorboard`` also writes the same scalars as
            TensorBoard events under ``RUN/tensorboard`` (needs ``pip install tensorboard``).
    """

    steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    warmup_steps: int = 100
    lr_decay_steps: int = 0
    ema_decay: float = 0.999
    ema_warmup: bool = True
    grad_clip: float = 1.0
    precision: Precision = "fp32"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 50
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    label_dropout: float = 0.1
    conditional: bool = False
    mask_strategy: str = "random_ratio"
    mask_options: dict[str, Any] = field(default_factory=dict)
    max_minutes: float | None = None
    max_cpu_seconds: float | None = None
    threads: int | None = None
    log: Literal["jsonl", "tensorboard"] = "jsonl"

    def __post_init__(self) -> None:
        positive = ("batch_size", "checkpoint_every", "keep_checkpoints", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"train.threads must be >= 1 (or unset), got {self.threads}")
        for name in ("max_minutes", "max_cpu_seconds"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"train.{name} must be > 0 (or unset), got {getattr(self, name)}")
        for name in ("steps", "warmup_steps", "lr_decay_steps", "weight_decay", "grad_clip"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"train.betas must be two numbers in [0, 1), got {self.betas}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0 <= self.label_dropout <= 1:
            raise ValueError(f"train.label_dropout must be in [0, 1], got {self.label_dropout}")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"train.precision must be 'fp32', 'bf16' or 'fp16', got {self.precision!r}")


__all__ = ["Precision", "TrainConfig"]
