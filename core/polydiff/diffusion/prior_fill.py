"""Prior fills for conditional models: a cheap deterministic guess of the hidden entries from the given ones.

A modality declares ``ModalitySpec.prior_fill = fn(x_given, given_mask) -> fill`` (linear interpolation
along time for series, the last given frame for video...). A conditional (masked) model uses it in one
of two ways, chosen by ``model.prior_fill``:

* ``"condition"``: the denoiser's conditioning input holds the fill on hidden entries instead of zeros,
  ``x_cond = given * x + (1 - given) * fill`` (PriSTI, Liu et al. ICDE 2023, Sec. IV-A, which conditions
  CSDI on the linear interpolation);
* ``"residual"``: as ``"condition"``, and the model diffuses the residual ``r = x - fill``: the denoiser
  becomes ``D(x) = fill + D_r(x - fill)``, sampling starts from ``fill + sigma_max * z``, so the model
  starts from the fill and learns only what it misses.

Training (:func:`polydiff.training.objective.diffusion_loss`) and sampling (:func:`polydiff.sample`, hence
:func:`polydiff.diffusion.imputation.impute`) build the fill with :meth:`PriorFill.fill` and wrap the denoiser
with :func:`polydiff.diffusion.guidance.with_prior_fill`, the same code on both sides. The fill only ever sees
``x * given``: it cannot read hidden values. A model carries its choice as ``denoiser.prior_fill``
(see :func:`attach_prior_fill`), like its parameterization.

The generic fills below (:func:`linear_fill`, :func:`locf_fill`, :func:`mean_fill`, :func:`harmonic_fill`)
work along any axis; plugins bind them to their layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from polydiff.exceptions import ConfigError

from .parameterization import sigma_data_of

FillFn = Callable[[Tensor, Tensor], Tensor]
Mode = Literal["none", "condition", "residual"]
MODES: tuple[str, ...] = ("none", "condition", "residual")


@dataclass(frozen=True)
class PriorFill:
    """How a conditional model uses a modality's fill: ``mode`` is ``"condition"`` or ``"residual"``;
    ``fn(x_given, given_mask) -> fill`` is the modality's :attr:`~polydiff.plugins.specs.ModalitySpec.prior_fill`."""

    mode: Literal["condition", "residual"]
    fn: FillFn

    def __post_init__(self) -> None:
        if self.mode not in ("condition", "residual"):
            raise ValueError(f"PriorFill.mode must be 'condition' or 'residual', got {self.mode!r}")
        if not callable(self.fn):
            raise TypeError(f"PriorFill.fn must be callable (x_given, given_mask) -> fill, got {self.fn!r:.80}")

    def fill(self, x: Tensor, given: Tensor, padding: Tensor | None = None) -> Tensor:
        """The fill of a batch: ``fn(x * given, given)`` on hidden entries, ``x`` exactly on given ones,
        0 on padded entries; computed without gradient. ``x``'s hidden entries are never read."""
        if x.shape != given.shape:
            raise ValueError(f"prior fill: x {list(x.shape)} and the given mask {list(given.shape)} must have "
                             "the same packed shape")
        mask = given.to(x.dtype)
        x_given = x * mask
        with torch.no_grad():
            raw = self.fn(x_given, mask)
        if not isinstance(raw, Tensor) or raw.shape != x.shape:
            got = list(raw.shape) if isinstance(raw, Tensor) else type(raw).__name__
            raise ValueError(f"prior fill {_name(self.fn)} returned {got} for a batch of {list(x.shape)}; "
                             "it must return a tensor of the packed batch shape")
        out = torch.where(mask > 0, x_given, raw.to(x.dtype))
        if padding is not None:
            out = out * padding.to(x.dtype)
        if not torch.isfinite(out).all():
            raise ValueError(f"prior fill {_name(self.fn)} returned non-finite values")
        return out.detach()

    def residual_spread(self, x: Tensor, observed: Tensor, target: Tensor, padding: Tensor | None = None) -> float:
        """sigma_data of what a ``residual`` model diffuses: the RMS of ``x - fill`` over the ``target``
        entries, the fill made from the other ``observed`` ones (all observed entries if nothing is a target)."""
        given = observed * (1 - target)
        r = x - self.fill(x * given, given, padding)
        return sigma_data_of(r, target if target.any() else observed)


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def resolve_prior_fill(mode: str, modality: Any, *, conditional: bool) -> PriorFill | None:
    """The :class:`PriorFill` for ``model.prior_fill = mode`` of a run of ``modality`` (a
    :class:`~polydiff.plugins.specs.ModalitySpec`); ``None`` for ``"none"``. Raises :class:`ConfigError`
    when the run is not conditional or the modality declares no fill."""
    if mode not in MODES:
        raise ConfigError(f"model.prior_fill = {mode!r} is not valid; choose one of: {', '.join(MODES)}")
    if mode == "none":
        return None
    if not conditional:
        raise ConfigError(f"model.prior_fill = {mode!r} needs a conditional (masked) model: set "
                          "train.conditional = true, or model.prior_fill = \"none\"")
    fn = getattr(modality, "prior_fill", None)
    if fn is None:
        raise ConfigError(f"model.prior_fill = {mode!r}, but modality {getattr(modality, 'name', modality)!r} "
                          "declares no prior fill (ModalitySpec.prior_fill); use model.prior_fill = \"none\"")
    return PriorFill(mode=mode, fn=fn)  # type: ignore[arg-type]


def attach_prior_fill(denoiser: Any, prior_fill: PriorFill | None) -> Any:
    """Record on ``denoiser`` (a :class:`~polydiff.diffusion.parameterization.Denoiser`) how it uses a prior fill;
    training and sampling read it from there (``None``: no fill). Returns the denoiser."""
    if prior_fill is not None and not isinstance(prior_fill, PriorFill):
        raise TypeError(f"attach_prior_fill takes a PriorFill or None, got {type(prior_fill).__name__}")
    object.__setattr__(denoiser, "prior_fill", prior_fill)  # a plain attribute: not in the state dict
    return denoiser


def prior_fill_of(denoiser: Any) -> PriorFill | None:
    """The :class:`PriorFill` a denoiser was built with (through a DDP wrapper too), or ``None``."""
    module = getattr(denoiser, "module", denoiser)
    pf = getattr(module, "prior_fill", None)
    return pf if isinstance(pf, PriorFill) else None


# ---- generic fills, along any axis ---------------------------------------------------------------

def _previous(given: Tensor) -> Tensor:
    """Index of the last given position at or before each position along the last axis (-1: none)."""
    t = torch.arange(given.shape[-1], device=given.device).expand_as(given)
    return torch.where(given > 0, t, torch.full_like(t, -1)).cummax(dim=-1).values


def _next(given: Tensor) -> Tensor:
    """Index of the first given position at or after each position (``L``: none)."""
    return (given.shape[-1] - 1 - _previous(given.flip(-1))).flip(-1)


def _at(x: Tensor, index: Tensor) -> Tensor:
    return x.gather(-1, index.clamp(0, x.shape[-1] - 1))


def linear_fill(x_given: Tensor, given: Tensor, dim: int = -1) -> Tensor:
    """Linear interpolation between given positions along ``dim``, held flat beyond the first and last
    (``np.interp``'s rule); 0 on lines with nothing given. Given entries are returned unchanged."""
    x, g = x_given.movedim(dim, -1), given.movedim(dim, -1)
    length = x.shape[-1]
    prev, nxt = _previous(g), _next(g)
    has_prev, has_next = prev >= 0, nxt < length
    t = torch.arange(length, device=x.device).expand_as(x).to(x.dtype)
    x_p, x_n = _at(x, prev), _at(x, nxt)
    frac = (t - prev.to(x.dtype)) / (nxt - prev).clamp_min(1).to(x.dtype)
    inner = x_p + (x_n - x_p) * frac
    out = torch.where(has_prev & has_next, inner, torch.where(has_prev, x_p, torch.where(has_next, x_n, 0 * x)))
    return torch.where(g > 0, x, out).movedim(-1, dim)


def locf_fill(x_given: Tensor, given: Tensor, dim: int = -1) -> Tensor:
    """The last given value along ``dim`` carried forward; positions before the first given one take
    the next given value; 0 on lines with nothing given."""
    x, g = x_given.movedim(dim, -1), given.movedim(dim, -1)
    prev, nxt = _previous(g), _next(g)
    out = torch.where(prev >= 0, _at(x, prev), torch.where(nxt < x.shape[-1], _at(x, nxt), 0 * x))
    return torch.where(g > 0, x, out).movedim(-1, dim)


def mean_fill(x_given: Tensor, given: Tensor, dims: tuple[int, ...] = (-1,)) -> Tensor:
    """The mean of the given entries over ``dims`` (0 where nothing is given) on hidden entries."""
    g = given.to(x_given.dtype)
    mean = (x_given * g).sum(dims, keepdim=True) / g.sum(dims, keepdim=True).clamp_min(1)
    return torch.where(given > 0, x_given, mean.expand_as(x_given))


def harmonic_fill(x_given: Tensor, given: Tensor, iterations: int = 200) -> Tensor:
    """A smooth inpainting of ``[..., H, W]`` without a model: hidden pixels start at the mean of the
    given ones (per channel) and relax towards the average of their 4 neighbours (Jacobi iterations
    of Laplace's equation with the given pixels fixed, replicated borders)."""
    shape = x_given.shape
    x = x_given.reshape(-1, 1, *shape[-2:])
    g = (given.reshape(-1, 1, *shape[-2:]) > 0)
    out = mean_fill(x, g.to(x.dtype), dims=(-2, -1))
    kernel = torch.tensor([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]], dtype=x.dtype,
                          device=x.device).reshape(1, 1, 3, 3)
    for _ in range(iterations):
        out = torch.where(g, x, F.conv2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), kernel))
    return out.reshape(shape)


__all__ = ["MODES", "FillFn", "PriorFill", "attach_prior_fill", "harmonic_fill", "linear_fill", "locf_fill",
           "mean_fill", "prior_fill_of", "resolve_prior_fill"]
