"""The self-conditioned e3nn backbone: equivariant in the state and its estimate jointly, padding-blind."""

import pytest
import torch

from polydiff import plugins, sample
from polydiff.app.runs import build_denoiser, resolve_config
from polydiff.diffusion.state import Field, StateSpec
from polydiff.testing import check_equivariance
from polydiff_molecule import EquivariantDenoiser
from polydiff_molecule.data import SPEC

# the state and its x0 estimate side by side, so that check_equivariance transforms both together
JOINT = StateSpec((*SPEC.fields, *(Field(f"est_{f.name}", f.shape, noise=f.noise) for f in SPEC.fields)))


@pytest.fixture(scope="module")
def net(small, tiny_options):
    torch.manual_seed(0)
    return EquivariantDenoiser(small.spec, **tiny_options, readout=16, update_positions=True,
                               self_condition=True).eval()


def _joint(net):
    def fn(z):
        parts = JOINT.unpack(z)
        x = SPEC.pack({f.name: parts[f.name] for f in SPEC.fields})
        est = SPEC.pack({f.name: parts[f"est_{f.name}"] for f in SPEC.fields})
        out = SPEC.unpack(net(x, torch.full((x.shape[0],), 0.3), self_cond=est))
        return JOINT.pack({**out, **{f"est_{f.name}": parts[f"est_{f.name}"] for f in SPEC.fields}})
    return fn


def test_equivariant_when_state_and_estimate_move_together(net):
    with torch.no_grad():
        for move in net.moves:
            move.weight.normal_()
        errors = check_equivariance(_joint(net), spec=JOINT, n_atoms=7, batch=3, atol=1e-4)
    assert max(errors.values()) < 1e-4


def test_the_estimate_changes_the_output_but_padded_atoms_of_it_do_not(net, small):
    b = small.get_batch(torch.arange(3))
    c = torch.full((3,), 0.3)
    zero = torch.zeros_like(b.x)
    with torch.no_grad():
        blind = net(b.x, c, padding=b.padding, self_cond=zero)
        est = torch.randn_like(b.x) * b.padding
        seen = net(b.x, c, padding=b.padding, self_cond=est)
        assert (seen - blind).abs().max() > 1e-3
        junk = est + torch.randn_like(b.x) * (1 - b.padding)  # change only the padded atoms' estimate
        again = net(b.x, c, padding=b.padding, self_cond=junk)
    assert float(((again - seen) * b.padding).abs().max()) < 1e-5
    with pytest.raises(ValueError, match="pass self_cond"):
        net(b.x, c, padding=b.padding)


def test_config_builds_and_samples_a_self_conditioned_molecule_model(small, tiny_options):
    config = resolve_config({"modality": "molecule", "data": {"dataset": "smiles"},
                             "model": {"backbone": "e3nn", "self_condition": True, **tiny_options}})
    assert plugins.get_backbone("e3nn").self_condition
    denoiser = build_denoiser(config, small)
    assert denoiser.self_condition
    padding = small.get_batch(torch.arange(4)).padding
    with torch.no_grad():
        res = sample(denoiser, shape=small.sample_shape, n=4, seed=0, sampler="heun", steps=4, spec=small.spec,
                     padding=padding)
    pos = small.spec.unpack(res.x)["pos"]
    real = small.spec.unpack(padding)["pos"]
    com = (pos * real).sum(1) / real.sum(1)
    assert torch.isfinite(res.x).all() and float(com.abs().max()) < 1e-5


def test_self_conditioned_conformer_net_rotates_with_the_state_and_its_estimate(tiny_options):
    from polydiff.testing import random_rotation
    from polydiff_molecule.conformers import POS_SPEC, ConformerDataset
    from polydiff_molecule.data import ELEMENTS, embed_smiles

    ds = ConformerDataset(embed_smiles(["CC(=O)N", "OCCO"], n_conformers=1, progress=False), max_atoms=10)
    torch.manual_seed(0)
    net = EquivariantDenoiser(POS_SPEC, graph_cond=True, cond_types=len(ELEMENTS), self_condition=True,
                              **tiny_options).eval()
    b = ds.get_batch(torch.arange(2))
    x = b.x + 0.3 * POS_SPEC.project(torch.randn(b.x.shape), b.padding)
    est = POS_SPEC.project(b.x + 0.1 * torch.randn(b.x.shape), b.padding)
    c, kw = torch.tensor([0.1, -0.4]), {"padding": b.padding, **b.cond}
    rot = random_rotation(2, 3, torch.Generator().manual_seed(1))
    rot[0, :, 0] *= -1  # one reflection

    def turn(t):
        return torch.einsum("bnd,bed->bne", t, rot)

    with torch.no_grad():
        y = net(x, c, self_cond=est, **kw)
        assert (net(turn(x), c, self_cond=turn(est), **kw) - turn(y)).abs().max() < 1e-4
        assert (net(x, c, self_cond=torch.zeros_like(est), **kw) - y).abs().max() > 1e-4  # the estimate counts
