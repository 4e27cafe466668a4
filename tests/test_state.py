import pytest
import torch

from polydiff.diffusion.data import ArrayDataset, holdout_split
from polydiff.diffusion.noise import NoiseSource, seeds_for
from polydiff.diffusion.state import Batch, Field, StateSpec, remove_com

MOL = StateSpec((Field("pos", (None, 3), "com_free"), Field("atom_types", (None, 5))))


def _mol_batch(lengths=(4, 6, 2), n_max=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    b = len(lengths)
    fields = {"pos": torch.randn(b, n_max, 3, generator=g), "atom_types": torch.randn(b, n_max, 5, generator=g)}
    pad = MOL.padding_mask(torch.tensor(lengths), n_max)
    return MOL.pack(fields) * pad, pad


def test_pack_unpack_round_trip_multi_field():
    x, pad = _mol_batch()
    assert x.shape == (3, 6 * 8)
    parts = MOL.unpack(x)
    assert parts["pos"].shape == (3, 6, 3) and parts["atom_types"].shape == (3, 6, 5)
    torch.testing.assert_close(MOL.pack(parts), x)
    assert MOL.length_of_packed(x) == 6


def test_single_field_keeps_its_shape():
    spec = StateSpec((Field("x", (3, 8, 8)),))
    img = torch.randn(2, 3, 8, 8)
    assert spec.pack({"x": img}) is img
    with pytest.raises(ValueError, match=r"expected per-sample shape \[3, 8, 8\]"):
        spec.pack({"x": torch.randn(2, 3, 8, 9)})


def test_padding_mask_marks_real_atoms():
    pad = MOL.unpack(MOL.padding_mask(torch.tensor([2, 3]), 4))
    assert pad["pos"][0, :, 0].tolist() == [1, 1, 0, 0]
    assert pad["atom_types"][1, :, 4].tolist() == [1, 1, 1, 0]


def test_projection_removes_centre_of_mass_of_real_atoms_only():
    x, pad = _mol_batch()
    y = MOL.unpack(MOL.project(x + 5.0, pad))
    p = MOL.unpack(pad)["pos"]
    com = (y["pos"] * p).sum(1) / p.sum(1)
    assert com.abs().max() < 1e-5
    types_pad = MOL.unpack(pad)["atom_types"]
    assert (y["pos"] * (1 - p)).abs().max() == 0 and (y["atom_types"] * (1 - types_pad)).abs().max() == 0
    torch.testing.assert_close(y["atom_types"], MOL.unpack((x + 5.0) * pad)["atom_types"])


def test_dims_count_degrees_of_freedom():
    x, pad = _mol_batch(lengths=(4, 6, 2))
    assert MOL.dims(pad, x).tolist() == [4 * 8 - 3, 6 * 8 - 3, 2 * 8 - 3]


def test_com_free_noise_is_batch_independent_and_centred():
    x, pad = _mol_batch()
    seeds = seeds_for(3, seed=7)
    full = NoiseSource(seeds, spec=MOL, padding=pad)(x)
    one = NoiseSource(seeds[1:2], spec=MOL, padding=pad[1:2])(x[1:2])
    torch.testing.assert_close(full[1:2], one)
    pos = MOL.unpack(full)["pos"]
    p = MOL.unpack(pad)["pos"]
    assert ((pos * p).sum(1) / p.sum(1)).abs().max() < 1e-6
    assert (full * (1 - pad)).abs().max() == 0


def test_remove_com_without_mask():
    pos = torch.randn(4, 5, 3) + 3
    assert remove_com(pos).mean(1).abs().max() < 1e-6


def test_field_and_batch_validation():
    with pytest.raises(ValueError, match="at most one variable"):
        Field("x", (None, None))
    with pytest.raises(ValueError, match="com_free needs"):
        Field("x", (3,), "com_free")
    with pytest.raises(ValueError, match="unique"):
        StateSpec((Field("a", (2,)), Field("a", (3,))))
    with pytest.raises(ValueError, match="packed shape"):
        Batch(x=torch.zeros(2, 3), padding=torch.ones(2, 4))
    with pytest.raises(ValueError, match="missing"):
        MOL.pack({"pos": torch.zeros(1, 2, 3)})
    assert repr(MOL) == "StateSpec(pos[N, 3, com_free], atom_types[N, 5])"


def test_dataset_rejects_nan_with_the_fix():
    spec = StateSpec((Field("x", (2,)),))
    with pytest.raises(ValueError, match="observed mask"):
        ArrayDataset(spec, torch.tensor([[0.0, float("nan")]]))


def test_holdout_split_is_reproducible_and_disjoint():
    spec = StateSpec((Field("x", (1,)),))
    ds = ArrayDataset(spec, torch.arange(100.0)[:, None], labels=torch.arange(100) % 3)
    tr, ho = holdout_split(ds, 0.2, seed=1)
    tr2, ho2 = holdout_split(ds, 0.2, seed=1)
    assert len(ho) == 20 and torch.equal(ho.indices, ho2.indices)
    assert not set(tr.indices.tolist()) & set(ho.indices.tolist())
    b = ho.get_batch(torch.arange(3))
    torch.testing.assert_close(b.x[:, 0].long() % 3, b.cond["label"])
