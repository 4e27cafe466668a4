"""Forward processes in continuous time: x_t = alpha(t) x0 + sigma(t) eps, t in [0, 1].

Every schedule is a small frozen dataclass (its fields are its options) giving ``alpha(t)`` and
``sigma(t)``; the rest derives from them. The core works in the variance-exploding view
``x / alpha = x0 + sigma_ve * eps`` with ``sigma_ve = sigma / alpha`` (Karras et al. 2022, Eq. 4
with s(t) = alpha(t)), so one sampler serves every schedule and schedules never appear in samplers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor

T_EPS = 1e-5  # avoid the singular endpoints of VP schedules


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """Base class. Subclasses define ``alpha_sigma``; ``t_min``/``t_max`` bound the usable range."""

    name = "schedule"
    t_min: float = T_EPS
    t_max: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.t_min < self.t_max <= 1:
            raise ValueError(f"{self.name}: need 0 <= t_min < t_max <= 1, got t_min={self.t_min}, t_max={self.t_max}")
        for lo, hi in (("sigma_lo", "sigma_hi"), ("beta_min", "beta_max"), ("start", "end")):
            a, b = getattr(self, lo, None), getattr(self, hi, None)
            if a is not None and b is not None and not a < b:
                raise ValueError(f"{self.name}: need {lo} < {hi}, got {lo}={a}, {hi}={b}")
        if getattr(self, "sigma_lo", 1.0) <= 0:
            raise ValueError(f"{self.name}: sigma_lo must be > 0")

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def logsnr(self, t: Tensor) -> Tensor:
        """lambda(t) = log(alpha^2 / sigma^2) (Kingma et al. 2021, VDM)."""
        a, s = self.alpha_sigma(t)
        return 2 * (torch.log(a) - torch.log(s))

    def sigma_ve(self, t: Tensor) -> Tensor:
        a, s = self.alpha_sigma(t)
        return s / a

    @property
    def sigma_min(self) -> float:
        return float(self.sigma_ve(torch.tensor(self.t_min, dtype=torch.float64)))

    @property
    def sigma_max(self) -> float:
        return float(self.sigma_ve(torch.tensor(self.t_max, dtype=torch.float64)))

    def t_from_sigma(self, sigma: Tensor) -> Tensor:
        """Invert ``sigma_ve(t)`` by bisection (sigma_ve is increasing in t for every schedule)."""
        target = torch.log(sigma.to(torch.float64))
        lo = torch.full_like(target, self.t_min)
        hi = torch.full_like(target, self.t_max)
        for _ in range(60):
            mid = (lo + hi) / 2
            above = torch.log(self.sigma_ve(mid)) > target
            hi = torch.where(above, mid, hi)
            lo = torch.where(above, lo, mid)
        return ((lo + hi) / 2).to(sigma.dtype)


@dataclass(frozen=True, kw_only=True)
class VPLinear(Schedule):
    """VP SDE with linear beta(t) (Song et al. 2021, Eq. 32); beta_min/max as in DDPM x 1000 steps."""

    name = "vp_linear"
    beta_min: float = 0.1
    beta_max: float = 20.0

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        log_alpha = -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
        return torch.exp(log_alpha), torch.sqrt(-torch.expm1(2 * log_alpha))


@dataclass(frozen=True, kw_only=True)
class VPCosine(Schedule):
    """Cosine schedule (Nichol & Dhariwal 2021, Eq. 17), continuous: alpha = cos((t+s)/(1+s) pi/2)."""

    name = "vp_cosine"
    s: float = 0.008
    t_max: float = 0.9946  # sigma_ve ~ 119 here; at t = 1 alpha is exactly 0

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        angle = (t + self.s) / (1 + self.s) * math.pi / 2
        a0 = math.cos(self.s / (1 + self.s) * math.pi / 2)
        return torch.cos(angle) / a0, torch.sqrt(1 - (torch.cos(angle) / a0) ** 2).clamp_min(1e-12)


@dataclass(frozen=True, kw_only=True)
class VPSigmoid(Schedule):
    """Sigmoid schedule (Jabri et al. 2023; Chen 2023, Alg. 1): gamma(t) = alpha^2 from a sigmoid."""

    name = "vp_sigmoid"
    start: float = -3.0
    end: float = 3.0
    tau: float = 1.0
    t_max: float = 0.9999

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        v0 = 1 / (1 + math.exp(-self.start / self.tau))
        v1 = 1 / (1 + math.exp(-self.end / self.tau))
        v = torch.sigmoid((t * (self.end - self.start) + self.start) / self.tau)
        gamma = ((v1 - v) / (v1 - v0)).clamp(1e-12, 1.0)
        return torch.sqrt(gamma), torch.sqrt((1 - gamma).clamp_min(1e-12))


@dataclass(frozen=True, kw_only=True)
class VE(Schedule):
    """VE SDE: geometric sigma(t) = sigma_lo (sigma_hi / sigma_lo)^t, alpha = 1 (Song et al. 2021)."""

    name = "ve"
    sigma_lo: float = 0.01
    sigma_hi: float = 80.0
    t_min: float = 0.0

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        s = self.sigma_lo * (self.sigma_hi / self.sigma_lo) ** t
        return torch.ones_like(t), s


@dataclass(frozen=True, kw_only=True)
class EDM(Schedule):
    """EDM (Karras et al. 2022): alpha = 1, sigma(t) interpolates sigma^(1/rho) linearly (Eq. 5)."""

    name = "edm"
    sigma_lo: float = 0.002
    sigma_hi: float = 80.0
    rho: float = 7.0
    t_min: float = 0.0

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        lo, hi = self.sigma_lo ** (1 / self.rho), self.sigma_hi ** (1 / self.rho)
        return torch.ones_like(t), (lo + t * (hi - lo)) ** self.rho


@dataclass(frozen=True, kw_only=True)
class RectifiedFlow(Schedule):
    """Linear interpolant x_t = (1 - t) x0 + t eps (Liu et al. 2022; Lipman et al. 2023)."""

    name = "flow"
    t_max: float = 0.999  # sigma_ve = t / (1 - t) ~ 1000

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return 1 - t, t


@dataclass(frozen=True, kw_only=True)
class Discrete(Schedule):
    """Discrete DDPM betas (Ho et al. 2020) as a continuous schedule: t = i / (N - 1) indexes step i,
    log sigma_ve is interpolated linearly between steps (as k-diffusion's DiscreteSchedule)."""

    name = "ddpm"
    steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    kind: Literal["linear", "scaled_linear"] = "linear"
    betas: tuple[float, ...] | None = None
    t_min: float = 0.0
    _log_sigmas: Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.betas is None and self.steps < 2:
            raise ValueError(f"ddpm: steps must be >= 2, got {self.steps}")
        if self.betas is not None:
            betas = np.asarray(self.betas, dtype=np.float64)
        elif self.kind == "linear":
            betas = np.linspace(self.beta_start, self.beta_end, self.steps, dtype=np.float64)
        else:
            betas = np.linspace(self.beta_start**0.5, self.beta_end**0.5, self.steps, dtype=np.float64) ** 2
        if np.any(betas <= 0) or np.any(betas >= 1):
            raise ValueError("ddpm betas must lie in (0, 1)")
        alphas_cumprod = np.cumprod(1 - betas)
        object.__setattr__(self, "_log_sigmas", torch.from_numpy(0.5 * np.log((1 - alphas_cumprod) / alphas_cumprod)))

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        log_sigmas = self._log_sigmas.to(t.device, t.dtype)
        pos = t.clamp(0, 1) * (len(log_sigmas) - 1)
        lo = pos.floor().long().clamp(max=len(log_sigmas) - 2)
        w = pos - lo
        log_s = (1 - w) * log_sigmas[lo] + w * log_sigmas[lo + 1]
        alpha = torch.rsqrt(1 + torch.exp(2 * log_s))
        return alpha, alpha * torch.exp(log_s)

    def __repr__(self) -> str:
        src = "custom betas" if self.betas is not None else f"{self.kind} {self.beta_start}..{self.beta_end}"
        return f"ddpm(steps={len(self._log_sigmas)}, {src})"


BUILTIN_SCHEDULES: tuple[type[Schedule], ...] = (VPLinear, VPCosine, VPSigmoid, VE, EDM, RectifiedFlow, Discrete)


# -- sigma grids for sampling (independent of the sampler) -----------------------------------
GridKind = Literal["uniform_t", "karras", "logsnr"]
GRIDS: tuple[str, ...] = ("uniform_t", "karras", "logsnr")


def sigma_grid(schedule: Schedule, steps: int, kind: GridKind = "karras", *, rho: float = 7.0,
               sigma_min: float | None = None, sigma_max: float | None = None) -> Tensor:
    """Decreasing VE noise levels ``[steps + 1]`` from sigma_max to sigma_min, then a final 0.

    * ``uniform_t``: equal steps in the schedule's own time (DDPM/DDIM practice);
    * ``karras``: equal steps in sigma^(1/rho) (Karras et al. 2022, Eq. 5);
    * ``logsnr``: equal steps in log-SNR, i.e. in log sigma (Lu et al. 2022, DPM-Solver).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    lo = schedule.sigma_min if sigma_min is None else sigma_min
    hi = schedule.sigma_max if sigma_max is None else sigma_max
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    if kind == "uniform_t":
        t_hi = schedule.t_from_sigma(torch.tensor([hi], dtype=torch.float64))
        t_lo = schedule.t_from_sigma(torch.tensor([lo], dtype=torch.float64))
        sig = schedule.sigma_ve(t_hi + ramp * (t_lo - t_hi))
    elif kind == "karras":
        sig = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    elif kind == "logsnr":
        sig = torch.exp(math.log(hi) + ramp * (math.log(lo) - math.log(hi)))
    else:
        raise ValueError(f"unknown sigma grid {kind!r}; valid grids: {', '.join(GRIDS)}")
    return torch.cat([sig, sig.new_zeros(1)]).float()


# -- training noise-level distributions ---------------------------------------------------------
NoiseLevelKind = Literal["uniform_t", "lognormal", "logit_normal", "uniform_logsnr"]
NOISE_LEVELS: tuple[str, ...] = ("uniform_t", "lognormal", "logit_normal", "uniform_logsnr")


@dataclass(frozen=True, kw_only=True)
class NoiseLevels:
    """How training draws a VE noise level per sample.

    * ``uniform_t``: t ~ U[t_min, t_max], then sigma = sigma_ve(t) (DDPM / VDM practice);
    * ``lognormal``: ln sigma ~ N(p_mean, p_std^2) (EDM, Karras et al. 2022, Sec. 5);
    * ``logit_normal``: t = sigmoid(N(m, s^2)) (Esser et al. 2024, SD3, Eq. 19);
    * ``uniform_logsnr``: logSNR uniform between the schedule's end points, so a loss weighting
      w(lambda) is exactly Kingma & Gao's (2023) weighted ELBO whatever the schedule.
    """

    kind: NoiseLevelKind = "uniform_t"
    p_mean: float = -1.2
    p_std: float = 1.2
    m: float = 0.0
    s: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in NOISE_LEVELS:
            raise ValueError(f"unknown noise-level distribution {self.kind!r}; valid: {', '.join(NOISE_LEVELS)}")
        if not (self.p_std > 0 and self.s > 0):
            raise ValueError(f"noise_levels: p_std and s must be > 0, got p_std={self.p_std}, s={self.s}")

    def sample(self, schedule: Schedule, u: Tensor) -> Tensor:
        """Map standard-normal draws ``u`` ``[B]`` (float64) to VE noise levels (inverse-CDF, so one
        seeded normal per sample fixes its level whatever the batch layout)."""
        if self.kind == "lognormal":
            return torch.exp(self.p_mean + self.p_std * u)
        if self.kind == "uniform_logsnr":  # log sigma_ve = -lambda / 2, uniform between the end points
            lo, hi = math.log(schedule.sigma_min), math.log(schedule.sigma_max)
            return torch.exp(lo + 0.5 * (1 + torch.erf(u / math.sqrt(2))) * (hi - lo))
        if self.kind == "logit_normal":
            t = torch.sigmoid(self.m + self.s * u)
        elif self.kind == "uniform_t":
            t = 0.5 * (1 + torch.erf(u / math.sqrt(2)))
        else:
            raise ValueError(f"unknown noise-level distribution {self.kind!r}; valid: {', '.join(NOISE_LEVELS)}")
        return schedule.sigma_ve(schedule.t_min + t * (schedule.t_max - schedule.t_min))


def scaled_to_data(schedule: Schedule, levels: NoiseLevels, sigma_data: float) -> tuple[Schedule, NoiseLevels]:
    """EDM tuned its sigma range and lognormal training levels for data of spread 0.5: for data (or a
    residual ``x - fill``) of spread ``sigma_data``, scale ``sigma_lo`` / ``sigma_hi`` by ``k = sigma_data / 0.5``
    and shift a lognormal ``p_mean`` by ``ln k`` (other kinds draw in the schedule's range, scaled with it)."""
    if not hasattr(schedule, "sigma_lo") or not hasattr(schedule, "sigma_hi"):
        raise ValueError(f"only a schedule with sigma_lo and sigma_hi (edm, ve) can be scaled, got {schedule.name!r}")
    if not sigma_data > 0:
        raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
    k = sigma_data / 0.5
    lo, hi = getattr(schedule, "sigma_lo"), getattr(schedule, "sigma_hi")  # noqa: B009 (checked above)
    schedule = dataclasses.replace(schedule, **{"sigma_lo": lo * k, "sigma_hi": hi * k})
    if levels.kind == "lognormal":
        levels = dataclasses.replace(levels, p_mean=levels.p_mean + math.log(k))
    return schedule, levels
