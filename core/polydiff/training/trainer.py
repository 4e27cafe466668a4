"""Training: AdamW, LR warmup, EMA, gradient clipping, mixed precision, checkpoints, resume, DDP.

Every random choice of step ``s`` (data order, noise levels, noise, label dropout, target masks) is
a function of ``(seed, s)`` and the global sample index (:mod:`polydiff.training.objective`), never of global
RNG state; so resuming after a crash, or running on N processes with the same GLOBAL batch, gives
the parameters of an uninterrupted single-process run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from polydiff.diffusion.contracts import MaskStrategySpec, registry_lookup
from polydiff.diffusion.data import DiffusionDataset
from polydiff.diffusion.losses import Weighting
from polydiff.diffusion.masking import BUILTIN_MASK_STRATEGIES
from polydiff.diffusion.noise import stream_seed
from polydiff.diffusion.parameterization import Denoiser
from polydiff.diffusion.schedules import NoiseLevels, Schedule
from polydiff.diffusion.state import StateSpec

from . import distributed as ddp
from .checkpoint import latest_checkpoint, read_checkpoint, remove_stale_temporaries, save_checkpoint
from .config import Precision, TrainConfig
from .metrics_log import MetricsLog, MetricSums
from .objective import MaskFn, diffusion_loss, draw_step, prepare_batch
from .resume import check_resumable, check_run_config


def _mask_fn(name: str, options: dict[str, Any]) -> MaskFn:
    for spec in BUILTIN_MASK_STRATEGIES:
        if spec.name == name:
            return spec.bind(options)
    # a plugin's strategy: through the registry polydiff.plugins installed (this layer never imports it)
    found: MaskStrategySpec | None = registry_lookup("mask_strategy", name)
    if found is None:
        known = ", ".join(s.name for s in BUILTIN_MASK_STRATEGIES)
        raise ValueError(f"train.mask_strategy {name!r} is not built in ({known}) and no plugin registry is loaded")
    return found.bind(options)


class Trainer:
    """Trains a :class:`~polydiff.diffusion.parameterization.Denoiser` on a dataset; see :class:`TrainConfig`.

    Args:
        denoiser, dataset, schedule, noise_levels, weighting: the model, data and objective.
        config: training options.
        run_dir: where ``metrics.jsonl`` and ``checkpoints/`` go (``None``: write nothing); when it
            holds a checkpoint, :meth:`fit` resumes from the newest one.
        mask_strategy: target-mask function for conditional training (default: by
            ``config.mask_strategy`` name); ignored unless ``config.conditional``.
        spec: the state's fields, for the noise space (default: ``dataset.spec``).
        run_config: the whole run config (a dict), saved in every checkpoint; resuming refuses a
            config whose sections differ from it except in ``RESUMABLE_EDITS``.
    """

    def __init__(self, *, denoiser: Denoiser, dataset: DiffusionDataset, schedule: Schedule,
                 noise_levels: NoiseLevels, weighting: Weighting, config: TrainConfig,
                 run_dir: str | Path | None = None, mask_strategy: MaskFn | None = None,
                 spec: StateSpec | None = None, run_config: dict[str, Any] | None = None) -> None:
        self.config, self.dataset, self.schedule = config, dataset, schedule
        self.noise_levels, self.weighting = noise_levels, weighting
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.spec = spec or dataset.spec
        self.dist, self.device = ddp.init_distributed(config.device)
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        ddp.shard(config.batch_size, self.dist)  # fail early on a batch the processes cannot split
        if config.precision == "fp16" and self.device.type != "cuda":
            raise ValueError("train.precision = 'fp16' needs a CUDA device (fp16 autocast with a GradScaler); "
                             "on CPU use precision = 'bf16' or 'fp32'")
        self.mask_fn = None
        if config.conditional:
            self.mask_fn = mask_strategy or _mask_fn(config.mask_strategy, config.mask_options)
        self.model = denoiser.to(self.device)
        self.net: nn.Module = self._wrap()
        self._closed = False
        self.params: list[Tensor] = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, betas=config.betas, eps=config.adam_eps,
                                           weight_decay=config.weight_decay)
        self.ema = [p.detach().float().clone() for p in self.params]
        self._fp32_params = all(p.dtype == torch.float32 for p in self.params)  # no per-step casts needed
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        self.generator = torch.Generator(device=self.device)
        self.step = 0
        self._perms: dict[int, Tensor] = {}
        self._seconds = 0.0
        self._cpu_seconds, self._cpu0 = 0.0, time.process_time()  # CPU time spent in fit (max_cpu_seconds)
        self.run_config = run_config
        self._sums: MetricSums | None = None  # the open logging window, saved with checkpoints
        self._resumed_sums: dict[str, Any] | None = None

    # -- the process group ----------------------------------------------------------------------
    def _wrap(self) -> nn.Module:
        if not self.dist.enabled:
            return self.model
        return nn.parallel.DistributedDataParallel(
            self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def _open(self) -> None:
        """Undo :meth:`close`: re-join the torchrun process group and re-wrap the model (collective)."""
        if self._closed:
            self.dist, _ = ddp.init_distributed(self.config.device)
            self.net = self._wrap()
            self._closed = False

    def close(self) -> None:
        """Destroy the process group if this Trainer created it (a group created by the caller is left
        to the caller). :meth:`fit` calls this when it ends; a later :meth:`fit` or :meth:`save`
        re-creates the group, on every process alike."""
        if self.dist.owns_group and not self._closed:
            # free DDP's Reducer (it holds the gloo group) first: a group destroyed later by GC joined a gloo
            # thread waiting for the GIL its caller held (a deadlock seen under load)
            self.net = self.model
            gc.collect()
            ddp.cleanup(self.dist)
            self._closed = True

    # -- data order and per-step inputs -------------------------------------------------------
    def _perm(self, epoch: int) -> Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(stream_seed(self.config.seed, "epoch", epoch))
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            self._perms[epoch] = torch.randperm(len(self.dataset), generator=g)
        return self._perms[epoch]

    def global_indices(self, step: int) -> Tensor:
        """Dataset indices of the global batch of ``step``: positions ``[step*B, (step+1)*B)`` of the
        endless stream of per-epoch permutations seeded by (seed, epoch)."""
        b, n = self.config.batch_size, len(self.dataset)
        start = step * b
        parts = []
        for epoch in range(start // n, (start + b - 1) // n + 1):
            lo, hi = max(start, epoch * n) - epoch * n, min(start + b, (epoch + 1) * n) - epoch * n
            parts.append(self._perm(epoch)[lo:hi])
        return torch.cat(parts)

    def step_loss(self, step: int) -> tuple[Tensor, Tensor]:
        """Per-sample loss ``[B/N]`` of this process's shard of step ``step``, and its sigmas."""
        cfg = self.config
        self.generator.manual_seed(stream_seed(cfg.seed, "step", step))
        draws = draw_step(self.generator, batch_size=cfg.batch_size, sample_shape=tuple(self.dataset.sample_shape),
                          schedule=self.schedule, noise_levels=self.noise_levels, label_dropout=cfg.label_dropout,
                          self_condition=0.5 if getattr(self.model, "self_condition", False) else 0.0)
        local, idx = ddp.shard(cfg.batch_size, self.dist), self.global_indices(step)
        if self.mask_fn is not None:  # the strategy must see the whole global batch (see prepare_batch)
            batch, eps, target = prepare_batch(self.dataset.get_batch(idx).to(self.device), draws,
                                               spec_project=self.spec.project, mask_fn=self.mask_fn,
                                               generator=self.generator)
            batch, eps = batch.select(local), eps[local]
            target = None if target is None else target[local]
        else:
            batch, eps, target = prepare_batch(self.dataset.get_batch(idx[local]).to(self.device),
                                               draws.select(local), spec_project=self.spec.project,
                                               mask_fn=None, generator=self.generator)
        sigma = draws.sigma[local]
        with self._autocast():
            loss = diffusion_loss(self.net, batch, sigma=sigma, eps=eps, weighting=self.weighting, target=target,
                                  parameterization=self.model.parameterization, project=self.spec.project,
                                  self_cond=None if draws.self_cond is None else draws.self_cond[local])
        return loss, sigma

    def _autocast(self) -> torch.autocast:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.config.precision]
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.config.precision != "fp32")

    def lr_at(self, step: int) -> float:
        warm, decay = self.config.warmup_steps, self.config.lr_decay_steps
        ramp = min(1.0, (step + 1) / warm) if warm else 1.0
        return self.config.lr * ramp / (math.sqrt(max((step + 1) / decay, 1.0)) if decay else 1.0)

    # -- one optimiser step -------------------------------------------------------------------
    def train_step(self, step: int) -> tuple[Tensor, Tensor, Tensor]:
        """One optimiser step; returns (per-sample loss, sigma, grad norm) as device tensors (no sync)."""
        cfg = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)
        loss, sigma = self.step_loss(step)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss.mean()).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.mean().backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        grad_norm = nn.utils.get_total_norm(grads)
        if cfg.grad_clip > 0:
            nn.utils.clip_grads_with_norm_(self.params, cfg.grad_clip, grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self._update_ema(step)
        self.step = step + 1
        return loss.detach(), sigma, grad_norm.detach()

    def ema_decay_at(self, step: int) -> float:
        d = self.config.ema_decay
        return min(d, (1 + step) / (10 + step)) if self.config.ema_warmup else d

    @torch.no_grad()
    def _update_ema(self, step: int) -> None:
        # ema <- d * ema + (1 - d) * theta, i.e. lerp towards theta by (1 - d); fp32 whatever the model dtype
        theta = self.params if self._fp32_params else [p.detach().float() for p in self.params]
        torch._foreach_lerp_(self.ema, theta, 1.0 - self.ema_decay_at(step))

    @contextlib.contextmanager
    def ema_weights(self) -> Iterator[Denoiser]:
        """The model with its EMA weights inside the block (to sample or score it), its raw weights after."""
        raw = [p.detach().clone() for p in self.params]
        self.apply_ema()
        try:
            yield self.model
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, raw)

    @torch.no_grad()
    def apply_ema(self) -> Denoiser:
        """Copy the EMA weights into the model for good (after training) and return it in eval mode."""
        torch._foreach_copy_(self.params, [e.to(p.dtype) for p, e in zip(self.params, self.ema, strict=True)])
        return self.model.eval()

    def ema_state_dict(self) -> dict[str, Tensor]:
        """The model's state_dict with every trainable parameter replaced by its EMA (buffers as is)."""
        names = {id(p): n for n, p in self.model.named_parameters()}
        ema = {names[id(p)]: e for p, e in zip(self.params, self.ema, strict=True)}
        return {k: ema.get(k, v) for k, v in self.model.state_dict().items()}

    # -- checkpoints ----------------------------------------------------------------------------
    def save(self) -> Path | None:
        """Checkpoint the current step (rank 0 writes, every process waits for it)."""
        self._open()
        path = None
        if self.run_dir is not None and self.dist.is_main:
            extra = {"seconds": self._seconds, "scaler": self.scaler.state_dict() if self.scaler else None,
                     "run_config": self.run_config, "metric_sums": self._sums.state() if self._sums else None}
            path = save_checkpoint(self.run_dir, step=self.step, model=self.model.state_dict(),
                                   ema=self.ema_state_dict(), optimizer=self.optimizer.state_dict(),
                                   config=dataclasses.asdict(self.config), extra=extra,
                                   keep=self.config.keep_checkpoints)
        ddp.barrier(self.dist)
        return path

    def resume(self) -> int:
        """Load the newest checkpoint of ``run_dir`` if there is one; returns the step to start from.

        Raises:
            ConfigError: the checkpoint was written with another value of a key in ``RESUME_KEYS``
                (the resumed run would not equal an uninterrupted one).
        """
        ckpt_dir = latest_checkpoint(self.run_dir) if self.run_dir is not None else None
        if ckpt_dir is None:
            return 0
        ckpt = read_checkpoint(ckpt_dir)
        check_resumable(ckpt.state.get("config", {}), self.config, ckpt_dir)
        extra = ckpt.state.get("extra", {})
        check_run_config(extra.get("run_config"), self.run_config, ckpt_dir)
        self.model.load_state_dict(ckpt.model)
        self.optimizer.load_state_dict(ckpt.optimizer)
        names = dict(self.model.named_parameters())
        inv = {id(p): n for n, p in names.items()}
        with torch.no_grad():
            for p, e in zip(self.params, self.ema, strict=True):
                e.copy_(ckpt.ema[inv[id(p)]])
        if self.scaler is not None and extra.get("scaler"):
            self.scaler.load_state_dict(extra["scaler"])
        self._seconds = float(extra.get("seconds", 0.0))
        self._resumed_sums = extra.get("metric_sums")
        self.step = ckpt.step
        return ckpt.step

    # -- the loop -------------------------------------------------------------------------------
    def _budget_shown(self) -> dict[str, str]:
        """For the progress bar: how much of a time budget is spent (its step count and ETA assume
        ``train.steps``, which a budget usually cuts short)."""
        cfg, shown = self.config, {}
        if cfg.max_cpu_seconds is not None:
            cpu = self._cpu_seconds + time.process_time() - self._cpu0
            shown["cpu"] = f"{cpu:.0f}/{cfg.max_cpu_seconds:g}s"
        if cfg.max_minutes is not None:
            shown["wall"] = f"{self._seconds / 60:.1f}/{cfg.max_minutes:g}min"
        return shown

    def _out_of_time(self) -> bool:
        cfg = self.config
        if cfg.max_minutes is None and cfg.max_cpu_seconds is None:
            return False
        cpu = self._cpu_seconds + time.process_time() - self._cpu0
        late = (cfg.max_minutes is not None and self._seconds >= 60 * cfg.max_minutes) or (
            cfg.max_cpu_seconds is not None and cpu >= cfg.max_cpu_seconds)
        flag = torch.tensor([float(late)], device=self.device)
        # every process must stop at the same step: stop when any of them is out of time
        return bool(ddp.all_reduce_sum(flag, self.dist).item() > 0)

    def fit(self, progress: bool = True) -> dict[str, Any]:
        """Train (resuming from ``run_dir``'s newest checkpoint) up to ``config.steps``.

        Returns a summary: final ``step``, last logged ``loss``, ``seconds``, ``resumed_from`` and
        the last ``checkpoint`` path. A Trainer that has already trained continues from its own
        ``step`` (e.g. after raising ``config.steps``); a fresh one resumes from ``run_dir``. Ends with
        :meth:`close`, also on an error; calling ``fit`` again re-joins the process group.
        """
        self._open()
        try:
            return self._fit(progress)
        finally:
            self.close()

    def _fit(self, progress: bool) -> dict[str, Any]:
        cfg, main = self.config, self.dist.is_main
        if self.run_dir is not None and main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.run_dir)
        ddp.barrier(self.dist)
        start = self.step if self.step else self.resume()
        log = MetricsLog(self.run_dir / "metrics.jsonl" if self.run_dir is not None and main else None, start,
                         tensorboard=cfg.log == "tensorboard")
        acc = self._sums = MetricSums(self.device)
        if self._resumed_sums and start:  # the logging window the checkpoint interrupted goes on
            acc.load(self._resumed_sums)
            self._resumed_sums = None
        summary: dict[str, Any] = {"resumed_from": start or None, "loss": None, "checkpoint": None}
        bar = tqdm(total=cfg.steps, initial=start, disable=not (progress and main), desc="train", unit="step")
        t0 = time.perf_counter() - self._seconds
        self._cpu0 = time.process_time()
        try:
            for step in range(start, cfg.steps):
                acc.add(*self.train_step(step))
                done = step + 1
                self._seconds = time.perf_counter() - t0
                out_of_time = self._out_of_time()
                if done % cfg.log_every == 0 or done == cfg.steps or out_of_time:
                    row = acc.flush(self.dist) | {"step": done, "lr": self.lr_at(step),
                                                  "seconds": round(self._seconds, 3)}
                    if not math.isfinite(row["loss"]):
                        raise FloatingPointError(f"the training loss became {row['loss']} by step {done}; lower "
                                                 "train.lr, set train.grad_clip, or use precision = 'fp32'")
                    log.write(row)
                    summary["loss"] = row["loss"]
                    bar.set_postfix({"loss": f"{row['loss']:.4g}", **self._budget_shown()})
                if done % cfg.checkpoint_every == 0 or done == cfg.steps or out_of_time:
                    summary["checkpoint"] = self.save()
                bar.update(1)
                if out_of_time:
                    budget = f"max_minutes = {cfg.max_minutes}" if cfg.max_cpu_seconds is None else (
                        f"max_cpu_seconds = {cfg.max_cpu_seconds}" if cfg.max_minutes is None else
                        f"max_minutes = {cfg.max_minutes} / max_cpu_seconds = {cfg.max_cpu_seconds}")
                    summary["stopped"] = f"train.{budget} reached at step {done}"
                    break
        finally:
            self._cpu_seconds += time.process_time() - self._cpu0
            bar.close()
            log.close()
        return summary | {"step": self.step, "seconds": self._seconds}


__all__ = ["Precision", "TrainConfig", "Trainer"]
