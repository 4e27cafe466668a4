"""The training objective of one batch, and the seeded draws that feed it.

Randomness is a pure function of ``(seed, step)`` (EDM's injected-randomness idea, taken one step
further): every process draws the noise levels, noise, label dropout and target masks of the WHOLE
global batch from a generator seeded by ``(seed, step)`` and keeps its own contiguous shard. So a
resumed run and an N-process run see exactly the draws of an uninterrupted 1-process run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from polydiff.diffusion.guidance import with_prior_fill
from polydiff.diffusion.losses import Weighting, denoising_loss, noisy
from polydiff.diffusion.masking import cond_mask_of
from polydiff.diffusion.noise import stream_seed
from polydiff.diffusion.parameterization import Parameterization
from polydiff.diffusion.prior_fill import prior_fill_of
from polydiff.diffusion.schedules import NoiseLevels, Schedule
from polydiff.diffusion.state import Batch

MaskFn = Callable[[Tensor, torch.Generator], Tensor]


@dataclass
class StepDraws:
    """The random inputs of one training step for a global batch of ``B``.

    Attributes:
        sigma: VE noise levels ``[B]`` (float32).
        eps: raw standard normals ``[B, ...]``, not yet projected into the state's noise space.
        drop_label: ``[B]`` bool, True where the class label is replaced by -1 (CFG dropout).
        self_cond: ``[B]`` bool, True where a self-conditioned model sees its own estimate
            (``None``: the model is not self-conditioned, and nothing was drawn).
    """

    sigma: Tensor
    eps: Tensor
    drop_label: Tensor
    self_cond: Tensor | None = None

    def select(self, index: slice) -> StepDraws:
        return StepDraws(sigma=self.sigma[index], eps=self.eps[index], drop_label=self.drop_label[index],
                         self_cond=None if self.self_cond is None else self.self_cond[index])


def draw_step(generator: torch.Generator, *, batch_size: int, sample_shape: tuple[int, ...],
              schedule: Schedule, noise_levels: NoiseLevels, label_dropout: float,
              self_condition: float = 0.0) -> StepDraws:
    """Draw, in a fixed order, everything random in one step of a global batch (on the generator's device).

    ``self_condition``: probability that a sample gets the model's own estimate (drawn last, and only
    when > 0, so models without self-conditioning see the same draws as before)."""
    dev = generator.device
    u = torch.randn(batch_size, generator=generator, dtype=torch.float64, device=dev)
    sigma = noise_levels.sample(schedule, u).float()
    eps = torch.randn((batch_size, *sample_shape), generator=generator, device=dev)
    drop = torch.rand(batch_size, generator=generator, device=dev) < label_dropout
    self_cond = (torch.rand(batch_size, generator=generator, device=dev) < self_condition
                 if self_condition > 0 else None)
    return StepDraws(sigma=sigma, eps=eps, drop_label=drop, self_cond=self_cond)


def _parameterization(denoiser: nn.Module | Callable[..., Tensor]) -> Parameterization:
    module = getattr(denoiser, "module", denoiser)  # DistributedDataParallel wraps the denoiser
    p = getattr(module, "parameterization", None)
    if not isinstance(p, Parameterization):
        raise TypeError("diffusion_loss needs a polydiff.Denoiser (or pass parameterization=...)")
    return p


def diffusion_loss(denoiser: nn.Module | Callable[..., Tensor], batch: Batch, *, sigma: Tensor, eps: Tensor,
                   weighting: Weighting, target: Tensor | None = None,
                   parameterization: Parameterization | None = None,
                   project: Callable[[Tensor, Tensor | None], Tensor] | None = None,
                   self_cond: Tensor | None = None) -> Tensor:
    """Per-sample denoising loss ``[B]`` of one batch (Karras et al. 2022, Eq. 2 with weight lambda).

    Args:
        denoiser: ``D(x, sigma, **cond) -> x0_hat``; its ``parameterization`` gives the weighting.
        batch: clean data, masks and conditioning (labels already dropped where wanted).
        sigma: VE noise levels ``[B]``.
        eps: standard normal noise already projected into the state's noise space (the caller's
            job: zero on padding, centre-of-mass free where the state asks for it).
        weighting: lambda(sigma) on the x0 error.
        target: conditional training (CSDI, Tashiro et al. 2021, Eq. 6): the held-out entries. The
            model gets ``x_cond`` (the other observed values, 0 elsewhere) and ``cond_mask``, and only
            target entries count. ``None``: unconditional; the loss counts the observed entries
            when the batch has an observed mask (missing values are not data), else all real ones.
            A denoiser with a prior fill (:func:`polydiff.diffusion.prior_fill.attach_prior_fill`) gets it
            through :func:`polydiff.diffusion.guidance.with_prior_fill`, as sampling does.
        parameterization: overrides the denoiser's (needed when ``denoiser`` is a plain callable).
        project: the state's noise-space projection ``(x, padding) -> x`` (e.g. ``StateSpec.project``),
            applied to the denoiser output and to ``x0`` before the loss, as sampling applies it to
            the output: components that sampling throws away (the centre of mass of a ``com_free``
            field) then neither count in the loss nor receive gradient. ``None``: no projection.
        self_cond: ``[B]`` bool for a self-conditioned denoiser (Chen et al. 2022, Sec. 3.2): a first
            pass without gradient gives the estimate that the samples marked True see as ``x_self``
            (the others see none); the loss is on the second pass. ``None``: one plain pass.
    """
    x0 = batch.x
    x = noisy(x0, sigma, eps)
    model = denoiser
    cond = dict(batch.cond)
    if batch.padding is not None:  # variable-length backbones need to know which entries are real
        cond.setdefault("padding", batch.padding)
    mask = batch.observed
    if target is not None:
        observed = batch.present()
        given = cond_mask_of(observed, target)
        if batch.padding is not None:
            given = given * batch.padding
        cond["x_cond"] = x0 * given
        cond["cond_mask"] = given
        mask = target
        prior_fill = prior_fill_of(denoiser)
        if prior_fill is not None:  # the fill sees x0 * given only; sampling wraps the same way
            denoiser = with_prior_fill(denoiser, prior_fill.fill(x0, given, batch.padding), prior_fill.mode)
    elif prior_fill_of(denoiser) is not None:
        raise ValueError("the denoiser has a prior fill (model.prior_fill), which needs conditional training "
                         "with target masks (train.conditional = true)")
    if self_cond is not None:
        cond["x_self"] = _own_estimate(denoiser, x, sigma, cond, self_cond, batch.padding, project)
    denoised = denoiser(x, sigma, **cond)
    if project is not None:  # compare in the noise space sampling works in
        denoised, x0 = project(denoised, batch.padding), project(x0, batch.padding)
    weight = weighting(sigma, parameterization or _parameterization(model), x0)
    return denoising_loss(denoised, x0, sigma, weight, padding=batch.padding, target=mask, norm=weighting.norm)


def _own_estimate(denoiser: nn.Module | Callable[..., Tensor], x: Tensor, sigma: Tensor, cond: dict[str, Tensor],
                  marked: Tensor, padding: Tensor | None,
                  project: Callable[[Tensor, Tensor | None], Tensor] | None) -> Tensor:
    """The detached, projected estimate for the ``marked`` samples, zeros (none) for the others; the
    first pass runs on the marked rows only (samples are independent), half the batch on average."""
    out = torch.zeros_like(x)
    rows = marked.nonzero(as_tuple=True)[0]
    if len(rows):
        with torch.no_grad():
            first = denoiser(x[rows], sigma[rows], **{k: v[rows] for k, v in cond.items()}).to(x.dtype)
            if project is not None:  # sampling feeds projected estimates
                first = project(first, None if padding is None else padding[rows])
        out[rows] = first
    return out


def prepare_batch(batch: Batch, draws: StepDraws, *, spec_project: Callable[[Tensor, Tensor | None], Tensor],
                  mask_fn: MaskFn | None, generator: torch.Generator) -> tuple[Batch, Tensor, Tensor | None]:
    """Apply label dropout, project the noise and draw target masks for a (global) batch.

    Returns ``(batch, eps, target)``; the mask strategy continues the step's generator, so it must
    be called on the global batch (same on every process).
    """
    if "label" in batch.cond:  # no .any() test: it would sync with the GPU every step
        label = batch.cond["label"]
        cond = {**batch.cond, "label": torch.where(draws.drop_label.to(label.device), -1, label)}
        batch = Batch(x=batch.x, padding=batch.padding, observed=batch.observed, cond=cond)
    eps = spec_project(draws.eps.to(batch.x.dtype), batch.padding)
    target = None
    if mask_fn is not None:
        observed = batch.present()
        target = mask_fn(observed, generator).to(batch.x.dtype)
        if target.shape != batch.x.shape:
            raise ValueError(f"mask strategy returned shape {list(target.shape)} for a batch of {list(batch.x.shape)}")
        target = target * observed  # enforce target <= observed whatever the strategy does
    return batch, eps, target


__all__ = ["StepDraws", "diffusion_loss", "draw_step", "prepare_batch", "stream_seed"]
