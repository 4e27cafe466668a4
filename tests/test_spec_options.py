"""Option defaults have one source: a spec without ``options`` reads them from its builder's signature,
and a spec that lists them (to expose a subset, or options a builder passes on) agrees with it."""

from __future__ import annotations

import pytest

from polydiff import plugins
from polydiff.diffusion.data import DiffusionDataset
from polydiff.options import signature_options
from polydiff.plugins import BackboneSpec, DatasetSpec, MaskStrategySpec, SamplerSpec


def _loader(*, n: int = 8, seed: int = 0, name: str = "x") -> DiffusionDataset:
    raise NotImplementedError


def _net(dataset: DiffusionDataset, *, width: int = 32, self_condition: bool = False):
    raise NotImplementedError


def test_options_are_read_from_the_signature_when_not_given():
    assert DatasetSpec(name="d", modality="m", description="-", build=_loader).options == {
        "n": 8, "seed": 0, "name": "x"}
    assert BackboneSpec(name="b", modality=None, description="-", build=_net).options == {"width": 32}
    assert SamplerSpec(name="s", description="-", fn=lambda d, x, s, *, noise=None, callback=None, eta=0.5: x
                       ).options == {"eta": 0.5}
    assert MaskStrategySpec(name="m", description="-", fn=lambda o, g, *, ratio=0.2: o).options == {"ratio": 0.2}
    assert DatasetSpec(name="d", modality="m", description="-", build=dict).options == {}  # no readable signature
    assert DatasetSpec(name="d", modality="m", description="-", build=_loader, options={"n": 8}).options == {"n": 8}


@pytest.mark.parametrize("kind", ["datasets", "backbones", "samplers", "mask_strategies"])
def test_every_registered_spec_agrees_with_its_builder(kind):
    drift = []
    for spec in getattr(plugins, kind)():
        fn = spec.build if kind in ("datasets", "backbones") else spec.fn
        declared = signature_options(fn)
        drift += [f"{spec.name}.{k}: spec {v!r}, {getattr(fn, '__name__', fn)} {declared[k]!r}"
                  for k, v in spec.options.items() if k in declared and declared[k] != v]
    assert not drift, drift
