"""Backbone conformance: the contract ``F(x_in, c_noise, **cond) -> out`` every sampler relies on."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from polydiff.diffusion.data import DiffusionDataset
from polydiff.diffusion.state import Batch
from polydiff.plugins.specs import BackboneSpec


def check_backbone(backbone: nn.Module | BackboneSpec, dataset_or_batch: DiffusionDataset | Batch, *,
                   atol: float = 1e-5, cond: Mapping[str, Tensor] | None = None,
                   options: Mapping[str, Any] | None = None, batch_size: int = 4, seed: int = 0) -> dict[str, Any]:
    """Assert that a backbone honours the contract samplers and losses rely on.

    Checks, with messages naming the failing property: the output has the input's packed shape and
    dtype and is finite; gradients reach every trainable parameter; in eval mode sample ``i``'s output
    depends on sample ``i`` only (changing another sample, or the batch size, changes nothing beyond
    ``atol``); entries marked padded (``padding == 0``) do not influence real outputs; a class label
    of ``-1`` ("no label", classifier-free guidance) is accepted when the backbone takes ``label``.
    When the batch has a padding mask the backbone receives it as ``padding=`` (as training, sampling
    and likelihood pass it), so a backbone of a variable-length state must accept that keyword.

    Args:
        backbone: a module ``F(x_in, c_noise, **cond)``, or a spec (built with ``options`` for the dataset).
        dataset_or_batch: a dataset (its first ``batch_size`` samples are used) or a batch of >= 2 samples.
        atol: tolerated absolute change for the independence and padding checks.
        cond: extra conditioning, e.g. ``x_cond`` and ``cond_mask`` for a conditional backbone.

    Returns:
        the measured errors: ``{"independence": float, "padding": float | None, "parameters": int}``.
    """
    if isinstance(dataset_or_batch, Batch):
        batch = dataset_or_batch
        if isinstance(backbone, BackboneSpec):
            raise TypeError("to build a backbone from its spec, pass a dataset rather than a batch")
        net = backbone
    else:
        batch = dataset_or_batch.get_batch(torch.arange(min(batch_size, len(dataset_or_batch))))
        net = backbone.build(dataset_or_batch, **(options or {})) if isinstance(backbone, BackboneSpec) else backbone
    name = backbone.name if isinstance(backbone, BackboneSpec) else type(backbone).__name__
    b = len(batch)
    if b < 2:
        raise ValueError("check_backbone needs a batch of at least 2 samples")
    g = torch.Generator().manual_seed(seed)
    real = batch.padding if batch.padding is not None else torch.ones_like(batch.x)
    x = batch.x + torch.randn(batch.x.shape, generator=g, dtype=batch.x.dtype) * real
    c_noise = torch.log(torch.linspace(0.3, 3.0, b, dtype=batch.x.dtype)) / 4  # EDM's c_noise of distinct sigmas
    kw = with_padding(net, name, {**batch.cond, **(cond or {})}, batch.padding)
    was_training = net.training
    try:
        report = _check(net, name, x, c_noise, kw, real, batch.padding, atol, g)
    finally:
        net.train(was_training)
        net.zero_grad(set_to_none=True)
    return report


def _check(net: nn.Module, name: str, x: Tensor, c_noise: Tensor, kw: dict[str, Tensor], real: Tensor,
           padding: Tensor | None, atol: float, g: torch.Generator) -> dict[str, Any]:
    net.train()
    net.zero_grad(set_to_none=True)
    out = net(x, c_noise, **kw)
    if not isinstance(out, Tensor) or out.shape != x.shape or out.dtype != x.dtype:
        got = f"{list(out.shape)} {out.dtype}" if isinstance(out, Tensor) else type(out).__name__
        raise AssertionError(f"backbone {name}: output must have the input's packed shape and dtype "
                             f"{list(x.shape)} {x.dtype}, got {got}")
    if not torch.isfinite(out).all():
        raise AssertionError(f"backbone {name}: output has {int((~torch.isfinite(out)).sum())} non-finite values")
    weights = torch.randn(out.shape, generator=g, dtype=out.dtype)  # random weights: no cancellation by symmetry
    (out * weights).sum().backward()
    params = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    missing = [n for n, p in params if p.grad is None]
    if missing:
        raise AssertionError(f"backbone {name}: no gradient reaches parameter(s) {missing[:10]} "
                             "(unused layers, or a detached path)")
    bad = [n for n, p in params if p.grad is not None and not torch.isfinite(p.grad).all()]
    if bad:
        raise AssertionError(f"backbone {name}: non-finite gradients in {bad[:10]}")

    net.eval()
    with torch.no_grad():
        ref = net(x, c_noise, **kw)
        err = 0.0
        # changing sample j, or dropping samples from the batch, must leave sample i alone (no batch statistics)
        for j in (0, x.shape[0] - 1):
            x2 = x.clone()
            x2[j] = x2[j] + 3 * torch.randn(x2[j].shape, generator=g, dtype=x.dtype) * real[j]
            keep = [i for i in range(x.shape[0]) if i != j]
            err = max(err, float((net(x2, c_noise, **kw) - ref)[keep].abs().max()))
        sub = {k: v[:1] for k, v in kw.items()}
        err = max(err, float((net(x[:1], c_noise[:1], **sub) - ref[:1]).abs().max()))
        if err > atol:
            raise AssertionError(f"backbone {name}: samples are not independent in eval mode: changing one sample "
                                 f"or the batch size moved another sample's output by {err:.3g} > atol {atol:g} "
                                 "(batch statistics or cross-sample attention?)")
        pad_err = None
        if padding is not None and bool((padding == 0).any()):
            x3 = x + 3 * torch.randn(x.shape, generator=g, dtype=x.dtype) * (1 - padding)
            pad_err = float(((net(x3, c_noise, **kw) - ref) * padding).abs().max())
            if pad_err > atol:
                raise AssertionError(f"backbone {name}: padded input entries change real outputs by {pad_err:.3g} "
                                     f"> atol {atol:g}; mask padded items out (e.g. multiply by the padding mask)")
        if accepts(net, "label"):
            try:
                out_u = net(x, c_noise, **{**kw, "label": torch.full((x.shape[0],), -1, dtype=torch.long)})
            except Exception as e:
                raise AssertionError(f"backbone {name}: label -1 (no label) must be accepted: "
                                     f"{type(e).__name__}: {e}") from e
            if out_u.shape != x.shape or not torch.isfinite(out_u).all():
                raise AssertionError(f"backbone {name}: with label -1 the output is not a finite tensor of shape "
                                     f"{list(x.shape)}")
    return {"independence": err, "padding": pad_err, "parameters": sum(p.numel() for _, p in params)}


def with_padding(net: nn.Module, name: str, cond: dict[str, Tensor], padding: Tensor | None) -> dict[str, Tensor]:
    """``cond`` plus ``padding=`` exactly when the core adds it (the batch has a padding mask).

    Raises:
        AssertionError: the batch has padding and ``net.forward`` cannot take a ``padding`` keyword.
    """
    if padding is None:
        return cond
    if not accepts(net, "padding"):
        params = inspect.signature(net.forward).parameters.values()
        sig = ", ".join(str(p.replace(annotation=inspect.Parameter.empty)) for p in params)
        raise AssertionError(f"backbone {name}: backbones of variable-length states receive padding=... (the packed "
                             "padding mask, passed by training, sampling and likelihood whenever a batch has one); "
                             f"accept it as a keyword: forward({sig}) has no `padding` "
                             "parameter (add `*, padding: Tensor | None = None`)")
    return {"padding": padding, **cond}  # like the core: a caller's own "padding" entry wins


def accepts(net: nn.Module, keyword: str, *, var_keyword: bool = True) -> bool:
    """Whether ``net.forward`` takes ``keyword`` (by name, or through ``**kwargs`` when ``var_keyword``)."""
    params = inspect.signature(net.forward).parameters.values()
    return any(p.name == keyword or (var_keyword and p.kind is inspect.Parameter.VAR_KEYWORD) for p in params)


__all__ = ["check_backbone"]
