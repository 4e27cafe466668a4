"""Target masks for conditional training (CSDI, Tashiro et al. 2021, Sec. 4.2 and Alg. 1).

Among the observed entries of a sample, a random *target* set is held out: the model sees the rest
(``x_cond``, ``cond_mask``) and the loss counts the targets only. A strategy is
``fn(observed, generator) -> target``: both packed-shape float masks, ``target <= observed``, and
the result depends only on ``observed`` and the generator's state (randomness is injected, so a
training step is reproducible from its seed).
"""

from __future__ import annotations

import torch
from torch import Tensor

from polydiff._utils import append_dims

from .contracts import MaskStrategySpec


def random_ratio(observed: Tensor, generator: torch.Generator) -> Tensor:
    """Per sample a ratio r ~ U(0, 1); round(r * n_observed) observed entries, chosen uniformly, become
    targets (CSDI's "random strategy"). Draws happen on the generator's device."""
    b = observed.shape[0]
    obs = observed.reshape(b, -1).to(torch.float32)
    dev = generator.device
    ratio = torch.rand(b, generator=generator, device=dev).to(obs.device)
    scores = torch.rand(obs.shape, generator=generator, device=dev).to(obs.device)
    # rank the observed entries by a random score (unobserved ones sort last), keep the top k
    scores = torch.where(obs > 0, scores, torch.full_like(scores, -1.0))
    order = scores.argsort(dim=1, descending=True)
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(obs.shape[1], device=obs.device).expand_as(order))
    k = torch.round(ratio * obs.sum(dim=1))
    target = (ranks < append_dims(k, 2)).to(torch.float32) * obs
    return target.reshape(observed.shape).to(observed.dtype if observed.is_floating_point() else torch.float32)


def cond_mask_of(observed: Tensor, target: Tensor) -> Tensor:
    """The entries the model is given: observed and not a target."""
    return observed * (1 - target)


BUILTIN_MASK_STRATEGIES: list[MaskStrategySpec] = [
    MaskStrategySpec(name="random_ratio", fn=random_ratio,
                     description="per sample a U(0,1) fraction of the observed entries becomes the target (CSDI)"),
]

__all__ = ["BUILTIN_MASK_STRATEGIES", "cond_mask_of", "random_ratio"]
