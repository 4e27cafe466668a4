"""Parameterizations and the denoiser contract ``D(x, sigma, **cond) -> x0_hat``.

Everything is written in the VE view ``x = x0 + sigma * eps`` (see :mod:`polydiff.diffusion.schedules`). A
network ``F`` becomes a denoiser through EDM preconditioning (Karras et al. 2022, Eq. 7):

    D(x, sigma) = c_skip(sigma) * x + c_out(sigma) * F(c_in(sigma) * x, c_noise(sigma))

and each classic parameterization is a choice of (c_skip, c_out, c_in), so eps-, x0-, v-, score- and
flow-models all train and sample through the same code. Conversions between the predictions of
different parameterizations live here and nowhere else (:func:`convert`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Protocol, cast

import torch
from torch import Tensor, nn

from polydiff._utils import append_dims, per_sample

from .schedules import Schedule
from .state import StateSpec

Kind = Literal["edm", "eps", "x0", "v", "score", "flow"]
PARAMETERIZATIONS: tuple[str, ...] = ("edm", "eps", "x0", "v", "score", "flow")


DenoiserLike = Callable[..., Tensor]  # what samplers, guidance and likelihood accept: D(x, sigma, **cond)


class DenoiserFn(Protocol):
    """The one model contract: ``D(x, sigma, **cond) -> x0_hat``, sigma of shape ``[B]``."""

    def __call__(self, x: Tensor, sigma: Tensor, **cond: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class Coefficients:
    c_skip: Tensor
    c_out: Tensor
    c_in: Tensor
    c_noise: Tensor


@dataclass(frozen=True, kw_only=True)
class Parameterization:
    """What the network predicts, as EDM preconditioning coefficients.

    * ``edm``: F-prediction with c_skip = sd^2/(s^2+sd^2), c_out = s sd/sqrt(s^2+sd^2) (EDM Eq. 7);
    * ``eps``: F = eps, so D = x - sigma F (Ho et al. 2020);
    * ``x0``: F = x0;
    * ``v``: F = v = alpha eps - sigma_vp x0 (Salimans & Ho 2022), always with unit sigma_data;
      it is ``edm`` with sd = 1 up to the sign of F;
    * ``score``: F = -sigma * score, the noise-conditional score network's scaling (Song & Ermon
      2019); it equals eps-prediction, kept so score models load without conversion code;
    * ``flow``: F = u = eps - x0, the rectified-flow velocity, fed x_t = x / (1 + sigma) and t.

    ``c_in`` is 1/sqrt(sigma^2 + sigma_data^2) (unit-variance input) except for ``flow``;
    ``c_noise`` is ln(sigma)/4 (EDM) except for ``flow`` (t).

    ``sigma_data`` is one number, or one per field of a structured state (``{"pos": 1.4,
    "atom_types": 0.08}`` with ``spec``): each field is then preconditioned with its own spread, so
    that c_in x and the target F have unit variance in every field (EDM's derivation, Appendix B.6,
    applied per field). ``c_noise`` stays one number per sample.
    """

    kind: Kind = "edm"
    sigma_data: float | Mapping[str, float] = 1.0
    spec: StateSpec | None = None

    def __post_init__(self) -> None:
        if self.kind not in PARAMETERIZATIONS:
            raise ValueError(f"unknown parameterization {self.kind!r}; valid: {', '.join(PARAMETERIZATIONS)}")
        if isinstance(self.sigma_data, Mapping):
            if self.spec is None:
                raise ValueError("a per-field sigma_data needs the state's spec: Parameterization(sigma_data={...}, "
                                 "spec=dataset.spec)")
            if set(self.sigma_data) != set(self.spec.names):
                raise ValueError(f"per-field sigma_data names {sorted(self.sigma_data)} must be the state's fields "
                                 f"{list(self.spec.names)}")
            values = list(self.sigma_data.values())
            object.__setattr__(self, "sigma_data", MappingProxyType(dict(self.sigma_data)))  # immutable
        else:
            values = [self.sigma_data]
        if not all(v > 0 for v in values):
            raise ValueError(f"sigma_data must be > 0, got {self.sigma_data}")

    @property
    def per_field(self) -> bool:
        return isinstance(self.sigma_data, Mapping)

    def sigma_data_like(self, x: Tensor) -> Tensor | float:
        """sigma_data for every entry of ``x`` ``[B, ...]``: a float, or a ``[1, ...]`` tensor when per field."""
        if not isinstance(self.sigma_data, Mapping):
            return self.sigma_data
        assert self.spec is not None
        fields = self.spec.unpack(x[:1])
        return self.spec.pack({k: torch.full_like(v, self.sigma_data[k]) for k, v in fields.items()})

    def broadcast(self, sigma: Tensor, x: Tensor | None) -> tuple[Tensor, Tensor | float]:
        """``(sigma, sigma_data)`` ready to combine: ``[B]`` and a float, or for a per-field sigma_data
        ``[B, 1, ...]`` and ``[1, ...]`` values like ``x`` (then ``x`` is required)."""
        if not self.per_field:
            return sigma, cast(float, self.sigma_data)
        if x is None:
            raise ValueError("a per-field sigma_data gives per-entry coefficients and weights: pass x")
        return append_dims(sigma, x.ndim), self.sigma_data_like(x)

    def coefficients(self, sigma: Tensor, x: Tensor | None = None) -> Coefficients:
        """The coefficients at noise levels ``sigma`` ``[B]``: ``[B]`` tensors, or ``[B, ...]`` like ``x``
        for a per-field sigma_data (then ``x``, the noisy batch or one of its shape, is required)."""
        c_noise = torch.log(sigma) / 4
        sigma, sd = self.broadcast(sigma, x)
        c_in = torch.rsqrt(sigma**2 + sd**2)
        if self.kind == "edm":
            c_skip = sd**2 / (sigma**2 + sd**2)
            c_out = sigma * sd * c_in
        elif self.kind in ("eps", "score"):
            c_skip, c_out = torch.ones_like(c_in), -sigma * torch.ones_like(c_in)
        elif self.kind == "x0":
            c_skip, c_out = torch.zeros_like(c_in), torch.ones_like(c_in)
        elif self.kind == "v":  # Salimans & Ho's v is defined for unit-variance data: sigma_data is 1
            c_in = torch.rsqrt(sigma**2 + 1) * torch.ones_like(c_in)
            c_skip = 1 / (sigma**2 + 1) * torch.ones_like(c_in)
            c_out = -sigma * c_in
        else:  # flow: x0 = (x - sigma u) / (1 + sigma), network input x_t = x / (1 + sigma)
            c_skip = c_in = 1 / (1 + sigma) * torch.ones_like(c_in)
            c_out = -sigma / (1 + sigma) * torch.ones_like(c_in)
            c_noise = sigma.reshape(-1) / (1 + sigma.reshape(-1))
        return Coefficients(c_skip=c_skip, c_out=c_out, c_in=c_in, c_noise=c_noise)

    def target(self, x: Tensor, x0: Tensor, sigma: Tensor) -> Tensor:
        """The network's regression target F* = (x0 - c_skip x) / c_out for noisy ``x``."""
        c = self.coefficients(sigma, x)
        n = x.ndim
        return (x0 - append_dims(c.c_skip, n) * x) / append_dims(c.c_out, n)

    def target_weight(self, sigma: Tensor, x: Tensor | None = None) -> Tensor:
        """1 / c_out^2: the weight on the x0-error that plain MSE on this target amounts to
        (``[B]``, or ``[B, ...]`` like ``x`` for a per-field sigma_data)."""
        return self.coefficients(sigma, x).c_out.pow(-2)


SELF_COND_CLIP = 5.0  # in units of sigma_data


class Denoiser(nn.Module):
    """A backbone ``F(x_in, c_noise, **cond)`` wrapped as ``D(x, sigma, **cond) -> x0_hat``.

    ``self_condition``: the backbone also sees an earlier estimate of x0 (self-conditioning, Chen et
    al. 2022, "Analog Bits", Sec. 3.2) as ``self_cond = x_self / sigma_data`` (unit spread per field,
    clipped to +-SELF_COND_CLIP; zeros when ``x_self`` is None, i.e. no estimate yet). Training feeds
    the model's own detached estimate half of the time (:func:`polydiff.training.objective.diffusion_loss`);
    :func:`polydiff.sample` feeds the previous step's. The backbone must declare
    ``supports_self_condition = True``. Sample from a sigma_max the training noise levels reach: at
    levels never trained on, estimates fed back can diverge (docs/concepts.md).
    """

    def __init__(self, backbone: nn.Module, parameterization: Parameterization | None = None, *,
                 self_condition: bool = False) -> None:
        super().__init__()
        if self_condition and not getattr(backbone, "supports_self_condition", False):
            raise ValueError(f"backbone {type(backbone).__name__} takes no self-conditioning input: set "
                             "model.self_condition = false, or use a backbone with supports_self_condition "
                             "(e.g. e3nn, mlp)")
        self.backbone = backbone
        self.parameterization = parameterization or Parameterization()
        self.self_condition = self_condition

    def forward(self, x: Tensor, sigma: Tensor | float, *, x_self: Tensor | None = None, **cond: Tensor) -> Tensor:
        sigma = per_sample(sigma, x)
        c = self.parameterization.coefficients(sigma, x)
        n = x.ndim
        if self.self_condition:
            if x_self is not None and x_self.shape != x.shape:
                raise ValueError(f"x_self must have the shape of x {list(x.shape)}, got {list(x_self.shape)}")
            # clipped: at noise levels never trained on (EDM's sigma_max = 80 beside lognormal
            # training) estimates can leave the data's range, and the clip bounds what is fed back
            cond = {**cond, "self_cond": torch.zeros_like(x) if x_self is None else (
                x_self.to(x.dtype) / self.parameterization.sigma_data_like(x)).clamp(-SELF_COND_CLIP, SELF_COND_CLIP)}
        elif x_self is not None:
            raise ValueError("x_self given to a denoiser built without self-conditioning (model.self_condition)")
        f = self.backbone(append_dims(c.c_in, n) * x, c.c_noise, **cond)
        if f.shape != x.shape:
            raise ValueError(f"backbone returned shape {list(f.shape)} for input {list(x.shape)}; "
                             "a backbone must return the packed input shape")
        return append_dims(c.c_skip, n) * x + append_dims(c.c_out, n) * f.to(x.dtype)


# -- conversions between predictions, all through x0 --------------------------------------------
PredictionKind = Literal["x0", "eps", "v", "score", "flow"]


def to_x0(kind: PredictionKind, pred: Tensor, x: Tensor, sigma: Tensor) -> Tensor:
    """x0 implied by a prediction of ``kind`` at noisy ``x`` (VE view) and level ``sigma`` [B]."""
    s = append_dims(sigma, x.ndim)
    if kind == "x0":
        return pred
    if kind == "eps":
        return x - s * pred
    if kind == "score":  # grad log p = -(x - x0) / sigma^2
        return x + s**2 * pred
    if kind == "v":  # v = (eps - sigma x0) / sqrt(1 + sigma^2)
        return (x - s * torch.sqrt(1 + s**2) * pred) / (1 + s**2)
    if kind == "flow":  # u = eps - x0
        return (x - s * pred) / (1 + s)
    raise ValueError(f"unknown prediction kind {kind!r}; valid: x0, eps, v, score, flow")


def from_x0(kind: PredictionKind, x0: Tensor, x: Tensor, sigma: Tensor) -> Tensor:
    """The prediction of ``kind`` that corresponds to ``x0`` at noisy ``x`` and level ``sigma``."""
    s = append_dims(sigma, x.ndim)
    eps = (x - x0) / s
    if kind == "x0":
        return x0
    if kind == "eps":
        return eps
    if kind == "score":
        return -eps / s
    if kind == "v":
        return (eps - s * x0) / torch.sqrt(1 + s**2)
    if kind == "flow":
        return eps - x0
    raise ValueError(f"unknown prediction kind {kind!r}; valid: x0, eps, v, score, flow")


def convert(pred: Tensor, src: PredictionKind, dst: PredictionKind, x: Tensor, sigma: Tensor) -> Tensor:
    """Convert a model prediction between kinds (e.g. an eps-model's output to v)."""
    return from_x0(dst, to_x0(src, pred, x, sigma), x, sigma)


def vp_to_ve(x_t: Tensor, alpha: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
    """(x_t, alpha, sigma) of a VP/flow process -> (x / alpha, sigma / alpha) of the VE view."""
    return x_t / append_dims(alpha, x_t.ndim), sigma / alpha


def from_prediction(model: Callable[..., Tensor], kind: PredictionKind, *, schedule: Schedule,
                    time_scale: float = 1.0) -> DenoiserFn:
    """Adapt an external model trained on ``schedule`` to the denoiser contract.

    The model is called as ``model(x_t, t * time_scale, **cond)`` with its own input
    x_t = alpha(t) x0 + sigma(t) eps, where t solves sigma(t) / alpha(t) = sigma (so a DDPM
    eps-network trained on 1000 steps takes ``schedule=Discrete(), time_scale=999``, a rectified-flow
    velocity network ``schedule=RectifiedFlow()``). Its prediction of ``kind`` is turned into x0;
    ``v`` follows Salimans & Ho's VP definition, so it assumes a variance-preserving schedule.
    """

    def denoiser(x: Tensor, sigma: Tensor, **cond: Tensor) -> Tensor:
        s = per_sample(sigma, x)
        t = schedule.t_from_sigma(s)
        alpha, _ = schedule.alpha_sigma(t)
        return to_x0(kind, model(x * append_dims(alpha, x.ndim), t * time_scale, **cond), x, s)

    return denoiser


def sigma_data_of(x: Tensor, padding: Tensor | None = None) -> float:
    """Standard deviation of real entries of ``x``, the usual estimate of EDM's sigma_data."""
    v = x if padding is None else x[padding.bool()]
    return float(v.float().std()) if v.numel() > 1 else 1.0


def field_sigma_data_of(spec: StateSpec, x: Tensor, padding: Tensor | None = None) -> dict[str, float]:
    """:func:`sigma_data_of` of every field of a packed batch. A constant field (e.g. charges that
    are all zero) has no spread to precondition for and takes the whole state's value."""
    fields, masks = spec.unpack(x), (spec.unpack(padding) if padding is not None else {})
    out = {name: sigma_data_of(v, masks.get(name)) for name, v in fields.items()}
    return {name: v if v > 0 else sigma_data_of(x, padding) for name, v in out.items()}


__all__ = ["PARAMETERIZATIONS", "Denoiser", "DenoiserFn", "Parameterization", "convert", "field_sigma_data_of",
           "from_prediction", "from_x0", "sigma_data_of", "to_x0", "vp_to_ve"]
