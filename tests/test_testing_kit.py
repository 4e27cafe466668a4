"""The conformance kit must pass conforming plugins and fail each kind of violation with a clear message."""

from __future__ import annotations

import dataclasses
import math
import types

import pytest
import torch
from torch import Tensor, nn

from polydiff.diffusion.data import ArrayDataset
from polydiff.diffusion.state import Batch, Field, StateSpec, remove_com
from polydiff.nn.layers import MLPBackbone, build_mlp
from polydiff.plugins import PluginHost, UnknownNameError
from polydiff.plugins.hookspecs import hookimpl
from polydiff.plugins.specs import BackboneSpec, DatasetSpec, MetricSpec, ModalitySpec
from polydiff.testing._backbone import check_backbone
from polydiff.testing._equivariance import check_equivariance, random_rotation
from polydiff.testing._modality import check_modality

MOL = StateSpec((Field("pos", (None, 3), "com_free"), Field("h", (None, 2)), Field("g", (4,))))


def molecules(n: int = 6, max_atoms: int = 5, *, dirty_padding: bool = False, observed: float | None = None,
              **_: object) -> ArrayDataset:
    """Variable-length toy molecules, padded to ``max_atoms``."""
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([3, 5, 4, 5, 2, 4][:n])
    padding = MOL.padding_mask(lengths, max_atoms)
    x = torch.randn(n, *padding.shape[1:], generator=gen)
    x = MOL.project(x, padding) if not dirty_padding else x
    obs = None if observed is None else torch.full_like(x, observed) * padding
    return ArrayDataset(MOL, x, padding=padding, observed=obs)


def host_with(*, modality: dict | None = None, load=molecules, metric=None, backbone_build=build_mlp) -> PluginHost:
    spec = ModalitySpec(**{"name": "mol", "description": "toy molecules", "default_dataset": "toy",
                           "default_backbone": "mol_mlp", "primary_metric": "mol_metric", **(modality or {})})
    plugin = types.SimpleNamespace(
        polydiff_register_modalities=hookimpl(lambda: [spec]),
        polydiff_register_datasets=hookimpl(lambda: [DatasetSpec(name="toy", modality="mol", description="-",
                                                                 build=load, options={"n": 6})]),
        polydiff_register_backbones=hookimpl(lambda: [BackboneSpec(name="mol_mlp", modality="mol", description="-",
                                                                   build=backbone_build)]),
        polydiff_register_metrics=hookimpl(lambda: [MetricSpec(
            name="mol_metric", modality="mol", description="-",
            fn=metric or (lambda s, ref: float(s.x.abs().mean())))]))
    host = PluginHost(entry_points=False)
    host.register(plugin, name="mol_plugin")
    return host


# -- check_modality ------------------------------------------------------------------------------
def test_points_conforms():
    report = check_modality("points", dataset_options={"n": 64})
    assert report["batch_shape"] == [4, 2] and report["metric"] == "sliced_w2"
    assert math.isfinite(report["metric_value"]) and report["metric_value"] > 0


def test_variable_length_modality_conforms_and_spec_must_match():
    host = host_with()
    assert check_modality("mol", plugin_host=host)["batch_shape"] == [4, 5 * 3 + 5 * 2 + 4]
    assert check_modality(host.get_modality("mol"), plugin_host=host)["dataset"] == "toy"
    other = dataclasses.replace(host.get_modality("mol"), description="changed")
    with pytest.raises(AssertionError, match="different spec"):
        check_modality(other, plugin_host=host)
    with pytest.raises(AssertionError, match=r"does not declare option\(s\) \['size'\]"):
        check_modality("mol", plugin_host=host, dataset_options={"size": 3})


@pytest.mark.parametrize("kwargs,message", [
    ({"load": lambda **k: molecules(dirty_padding=True)}, "padded entries"),
    ({"load": lambda **k: molecules(observed=0.5)}, "observed mask must hold only 0 and 1"),
    ({"metric": lambda s, ref: float("nan")}, "must return a finite float"),
    ({"modality": {"plot_samples": lambda s, r, p: None}}, "plot_samples wrote no file"),
    ({"modality": {"plot_trajectory": lambda frames, p: p.write_text("not a png")}}, "not a PNG"),
    ({"backbone_build": lambda ds: nn.Linear(1, 1)},
     r"backbone 'mol_mlp': backbones of variable-length states receive padding=\.\.\..*accept it as a keyword"),
    ({"backbone_build": lambda ds: Unmasked(1)}, "default backbone 'mol_mlp' failed .* RuntimeError"),
    ({"load": lambda **k: ShortPadded(MOL, molecules().x, padding=molecules().padding)},
     r"per-sample shape \[29\], sample_shape says \[34\]; get_batch must pad every batch to dataset.sample_shape"),
    ({"load": lambda **k: torch.zeros(3)}, "lacks the DiffusionDataset attributes"),
])
def test_modality_violations_fail_clearly(kwargs, message):
    with pytest.raises(AssertionError, match=message):
        check_modality("mol", plugin_host=host_with(**kwargs))


class ShortPadded(ArrayDataset):
    """Pads to the longest sample in the data (5 atoms) while sample_shape says 6: the trainer's noise would not fit."""

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (6 * 3 + 6 * 2 + 4,)


def test_unresolvable_defaults_fail():
    with pytest.raises(UnknownNameError, match="unknown backbone 'nope'"):
        check_modality("mol", plugin_host=host_with(modality={"default_backbone": "nope"}))
    with pytest.raises(UnknownNameError, match="unknown modality 'absent'"):
        check_modality("absent", plugin_host=host_with())


# -- check_backbone ------------------------------------------------------------------------------
class MaskedDeepSet(nn.Module):
    """Per-atom MLP plus a masked mean over real atoms: padding-safe and per-sample."""

    def __init__(self) -> None:
        super().__init__()
        self.atom, self.mix = nn.Linear(5, 5), nn.Linear(5 + 4, 5)

    def forward(self, x: Tensor, c_noise: Tensor, *, padding: Tensor) -> Tensor:
        f = MOL.unpack(x)
        real = MOL.unpack(padding)["h"][..., :1]
        atoms = torch.cat([f["pos"], f["h"]], -1) * real
        pooled = (self.atom(atoms) * real).sum(1) / real.sum(1).clamp_min(1)
        out = self.mix(torch.cat([pooled, f["g"]], -1))[:, None, :] * real + atoms * c_noise[:, None, None]
        return MOL.pack({"pos": out[..., :3], "h": out[..., 3:], "g": f["g"] * 2 + pooled[:, :4]})


def test_conforming_backbones_pass():
    points = build_mlp(molecules(), width=8, depth=1, emb_dim=8)
    ring = ArrayDataset(StateSpec((Field("x", (2,)),)), torch.randn(8, 2), labels=torch.arange(8) % 3)
    spec = BackboneSpec(name="mlp", modality=None, description="-", build=build_mlp)
    report = check_backbone(spec, ring, options={"width": 8, "depth": 1, "emb_dim": 8, "class_cond": True})
    assert report["independence"] < 1e-5 and report["padding"] is None and report["parameters"] > 0
    assert points.training  # the check restores the module's mode


def test_padding_check_separates_masked_from_unmasked_backbones():
    data = molecules()
    assert check_backbone(MaskedDeepSet(), data)["padding"] == 0.0
    # the core's MLP zeroes padded inputs, so it passes; a dense layer that ignores the mask fails
    assert check_backbone(build_mlp(data, width=8, depth=1, emb_dim=8), data)["padding"] == 0.0
    with pytest.raises(AssertionError, match="padded input entries change real outputs"):
        check_backbone(Unmasked(data.get_batch(torch.arange(1)).x[0].numel()), data)


class Unmasked(nn.Module):
    """A dense layer over the whole packed state that takes the padding mask and ignores it."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(dim, dim)

    def forward(self, x: Tensor, c_noise: Tensor, *, padding: Tensor | None = None) -> Tensor:
        return self.lin(x.reshape(len(x), -1)).reshape(x.shape)


class NoPaddingKeyword(Unmasked):
    """A backbone for fixed-size states: it cannot take ``padding=``."""

    def forward(self, x: Tensor, c_noise: Tensor) -> Tensor:  # type: ignore[override]
        return super().forward(x, c_noise)


def test_padded_batches_pass_padding_like_the_core():
    data = molecules()
    batch = data.get_batch(torch.arange(4))
    net = NoPaddingKeyword(batch.x[0].numel())
    with pytest.raises(AssertionError, match=r"NoPaddingKeyword: backbones of variable-length states receive "
                                             r"padding=\.\.\. .*; accept it as a keyword: forward\(x, c_noise\)"):
        check_backbone(net, batch)
    # the same backbone is fine where the core passes no padding (a batch without a padding mask)
    assert check_backbone(net, Batch(x=batch.x * batch.padding))["independence"] < 1e-5
    # what the kit passes is exactly the batch's mask
    calls: list[dict[str, Tensor]] = []

    class Spy(Unmasked):
        def forward(self, x: Tensor, c_noise: Tensor, **cond: Tensor) -> Tensor:
            calls.append(cond)
            return super().forward(x * cond["padding"], c_noise) * cond["padding"]

    check_backbone(Spy(batch.x[0].numel()), batch)
    assert set(calls[0]) == {"padding"} and torch.equal(calls[0]["padding"], batch.padding)


class BatchMean(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor, c_noise: Tensor) -> Tensor:
        return self.w * (x - x.mean(0, keepdim=True))


class Unused(BatchMean):
    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Linear(2, 2)

    def forward(self, x: Tensor, c_noise: Tensor) -> Tensor:
        return self.w * x


class Flat(BatchMean):
    def forward(self, x: Tensor, c_noise: Tensor) -> Tensor:
        return self.w * x.reshape(len(x), -1)


class NoUnconditional(BatchMean):
    def forward(self, x: Tensor, c_noise: Tensor, *, label: Tensor | None = None) -> Tensor:
        if label is not None and (label < 0).any():
            raise IndexError("index -1 is out of bounds")
        return self.w * x


@pytest.mark.parametrize("net,message", [
    (BatchMean(), "samples are not independent"),
    (Unused(), r"no gradient reaches parameter\(s\) \['unused.weight', 'unused.bias'\]"),
    (Flat(), "must have the input's packed shape"),
    (NoUnconditional(), "label -1 \\(no label\\) must be accepted"),
])
def test_backbone_violations_fail_clearly(net, message):
    batch = Batch(x=torch.randn(4, 2, 3))
    with pytest.raises(AssertionError, match=message):
        check_backbone(net, batch)


def test_mlp_backbone_with_labels_accepts_unconditional_label():
    net = MLPBackbone(6, width=8, depth=1, emb_dim=8, num_classes=3)
    batch = Batch(x=torch.randn(3, 6), cond={"label": torch.tensor([0, 2, 1])})
    assert check_backbone(net, batch)["independence"] < 1e-5


# -- check_equivariance --------------------------------------------------------------------------
def _centred(x: Tensor) -> dict[str, Tensor]:
    f = MOL.unpack(x)
    return {**f, "pos": remove_com(f["pos"])}


def equivariant(x: Tensor) -> Tensor:
    f = _centred(x)
    c, r = f["pos"], f["pos"].norm(dim=-1, keepdim=True)
    h_mean = f["h"].mean(1, keepdim=True)
    return MOL.pack({"pos": c * r + c * h_mean[..., :1], "h": f["h"] * r + h_mean,
                     "g": f["g"] * r.square().sum(1)})


def chiral(x: Tensor) -> Tensor:
    f = _centred(x)
    c, r = f["pos"], f["pos"].norm(dim=-1, keepdim=True)
    v = torch.stack([(c * r**k).sum(1) for k in (1, 2, 3)], -1)  # three vectors, so det(v) is a pseudoscalar
    return MOL.pack({**f, "pos": c * (1 + 0.1 * torch.linalg.det(v))[:, None, None]})


def _map_pos(g):
    return lambda x: MOL.pack({**MOL.unpack(x), "pos": g(MOL.unpack(x)["pos"])})


def test_equivariant_function_passes():
    errors = check_equivariance(equivariant, spec=MOL, n_atoms=6)
    assert set(errors) == {"rotation", "reflection", "translation", "permutation"}
    assert max(errors.values()) < 1e-4


@pytest.mark.parametrize("fn,transform", [
    (_map_pos(lambda p: p * torch.tensor([1.0, 2.0, 3.0])), "rotation"),
    (_map_pos(lambda p: p * p.norm(dim=-1, keepdim=True)), "translation"),  # forgets to remove the CoM
    (_map_pos(lambda p: remove_com(p.cumsum(1))), "permutation"),
    (chiral, "reflection"),
    (lambda x: MOL.pack({**_centred(x), "g": MOL.unpack(x)["g"] + MOL.unpack(x)["pos"][:, 0, 0:1]}), "field 'g'"),
])
def test_non_equivariant_functions_fail_naming_the_transform(fn, transform):
    with pytest.raises(AssertionError, match=f"not equivariant under .*{transform}"):
        check_equivariance(fn, spec=MOL)


def test_chiral_function_is_rotation_equivariant_and_options():
    assert "reflection" not in check_equivariance(chiral, spec=MOL, reflections=False)
    fixed = StateSpec((Field("pos", (4, 3), "com_free"), Field("vel", (4, 3))))

    def velocity(x: Tensor, scale: float) -> Tensor:
        f = fixed.unpack(x)
        c = remove_com(f["pos"])
        return fixed.pack({"pos": c + 0.1 * f["vel"], "vel": scale * f["vel"] * c.norm(dim=-1, keepdim=True)})

    check_equivariance(velocity, spec=fixed, vector_fields=["vel"], kwargs={"scale": 2.0})
    with pytest.raises(AssertionError, match="rotation \\(field 'pos'"):  # vel wrongly taken as a scalar field
        check_equivariance(velocity, spec=fixed, kwargs={"scale": 2.0})
    with pytest.raises(ValueError, match="needs a com_free position field"):
        check_equivariance(lambda x: x, spec=StateSpec((Field("x", (3,)),)))


def test_random_rotations_are_proper_and_orthogonal():
    r = random_rotation(16, 3, torch.Generator().manual_seed(1), torch.float64)
    assert torch.allclose(r @ r.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(16, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(16, dtype=torch.float64))


def test_public_kit_reexports():
    import polydiff.testing as kit
    from polydiff.testing._sampler import check_sampler

    assert kit.check_sampler is check_sampler and kit.check_modality is check_modality
    assert set(kit.__all__) >= {"check_backbone", "check_equivariance", "check_modality", "check_sampler"}
