"""Prior-fill conformance: the properties the core relies on a modality's ``prior_fill`` for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from polydiff.diffusion.prior_fill import PriorFill
from polydiff.plugins import PluginHost, host
from polydiff.plugins.specs import ModalitySpec


def check_prior_fill(name_or_spec: str | ModalitySpec, *, dataset_options: Mapping[str, Any] | None = None,
                     batch_size: int = 4, hidden: float = 0.5, seed: int = 0,
                     plugin_host: PluginHost | None = None) -> dict[str, Any]:
    """Assert that a modality's ``prior_fill`` is usable by the core, on a batch of its default dataset.

    Checks, each with a message naming what fails: the modality declares a fill; with a random
    ``hidden`` fraction of the real entries hidden, the fill has the batch's shape and is finite;
    given entries come back exactly; it does not read hidden values (the same fill and the same
    conditioning after the hidden truth is replaced by noise); it is deterministic; each item's
    fill depends on that item only (the batch's fill equals the items' fills one by one); with
    every real entry given it is the data there, and with nothing given it is finite.

    Returns ``{"modality", "batch_shape", "fill_mae"}``: the fill's mean absolute error on the
    hidden entries (a reference, not a bar).
    """
    h = plugin_host or host()
    name = name_or_spec if isinstance(name_or_spec, str) else name_or_spec.name
    modality = h.get_modality(name)
    if modality.prior_fill is None:
        raise AssertionError(f"modality {name!r} declares no prior_fill (ModalitySpec.prior_fill)")
    pf = PriorFill(mode="condition", fn=modality.prior_fill)
    dataset = h.get_dataset(name, modality.default_dataset).build(**(dataset_options or {}))
    batch = dataset.get_batch(torch.arange(min(batch_size, len(dataset))))
    x = batch.x
    real = torch.ones_like(x)
    for m in (batch.observed, batch.padding):
        if m is not None:
            real = real * m
    g = torch.Generator().manual_seed(seed)
    given = real * (torch.rand(x.shape, generator=g) >= hidden).to(x.dtype)
    fill = pf.fill(x, given, batch.padding)
    if fill.shape != x.shape or not torch.isfinite(fill).all():
        raise AssertionError(f"{name}.prior_fill: fill {list(fill.shape)} (finite: {bool(torch.isfinite(fill).all())}) "
                             f"for a batch of {list(x.shape)}")
    keep = given.bool()
    raw = modality.prior_fill(x * given, given)
    if not torch.equal(raw[keep], x[keep]):
        err = float((raw[keep] - x[keep]).abs().max())
        raise AssertionError(f"{name}.prior_fill changes given entries (max error {err:.3g}); return them unchanged")
    other = torch.where(keep, x, torch.randn(x.shape, generator=g) * 10)
    if not torch.equal(pf.fill(other, given, batch.padding), fill):
        raise AssertionError(f"{name}.prior_fill depends on hidden values (changing them changed the fill)")
    if not torch.equal(pf.fill(x, given, batch.padding), fill):
        raise AssertionError(f"{name}.prior_fill is not deterministic (two calls differ)")
    for i in range(len(x)):
        one = pf.fill(x[i:i + 1], given[i:i + 1], None if batch.padding is None else batch.padding[i:i + 1])
        if not torch.allclose(one, fill[i:i + 1], atol=1e-6):
            raise AssertionError(f"{name}.prior_fill of item {i} depends on the other items of the batch")
    if not torch.equal(pf.fill(x, real, batch.padding)[real.bool()], x[real.bool()]):
        raise AssertionError(f"{name}.prior_fill with every real entry given must return the data there")
    if not torch.isfinite(modality.prior_fill(torch.zeros_like(x), torch.zeros_like(x))).all():
        raise AssertionError(f"{name}.prior_fill with nothing given must stay finite")
    hidden_mask = (real - given).bool()
    mae = float((fill - x)[hidden_mask].abs().mean()) if hidden_mask.any() else 0.0
    return {"modality": name, "batch_shape": list(x.shape), "fill_mae": mae}
