"""The e3nn backbone and sampling: E(3) and permutation equivariance, padding, centre of mass."""

import pytest
import torch

from polydiff import plugins, sample
from polydiff.diffusion.parameterization import Denoiser, Parameterization
from polydiff.diffusion.schedules import EDM, sigma_grid
from polydiff.diffusion.state import projector
from polydiff.testing import check_backbone, check_equivariance, random_rotation
from polydiff_molecule import EquivariantDenoiser
from polydiff_molecule.conformers import POS_SPEC, ConformerDataset, graph_of
from polydiff_molecule.data import ELEMENTS, SPEC, embed_smiles


def test_backbone_is_e3_and_permutation_equivariant(tiny_net):
    with torch.no_grad():
        errors = check_equivariance(lambda x: tiny_net(x, torch.full((x.shape[0],), 0.3)), spec=SPEC, n_atoms=7,
                                    batch=3, atol=1e-4)
    assert set(errors) == {"rotation", "reflection", "translation", "permutation"}
    assert max(errors.values()) < 1e-4


def test_position_updates_keep_the_backbone_equivariant_and_padding_blind(small, tiny_options):
    torch.manual_seed(0)
    net = EquivariantDenoiser(small.spec, **{**tiny_options, "layers": 3}, update_positions=True).eval()
    with torch.no_grad():
        b = small.get_batch(torch.arange(2))
        fixed = EquivariantDenoiser(small.spec, **{**tiny_options, "layers": 3}).eval()
        fixed.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("moves.")})
        c = torch.full((2,), 0.3)
        still = fixed(b.x, c, padding=b.padding)
        assert torch.allclose(net(b.x, c, padding=b.padding), still, atol=1e-6)  # zero-initialised moves
        for move in net.moves:  # give them weights so the atoms really move
            move.weight.normal_()
        moved = net(b.x, c, padding=b.padding)
        assert (moved - still).abs().max() > 1e-3  # the moves change the output
        errors = check_equivariance(lambda x: net(x, torch.full((x.shape[0],), 0.3)), spec=SPEC, n_atoms=7,
                                    batch=3, atol=1e-4)
    assert max(errors.values()) < 1e-4
    report = check_backbone(net, small, batch_size=4, atol=1e-5)  # with the atoms moving
    assert report["padding"] is not None and report["padding"] < 1e-5


def test_mlp_readout_keeps_the_backbone_equivariant_and_reads_the_vectors(small, tiny_options):
    torch.manual_seed(0)
    net = EquivariantDenoiser(small.spec, **tiny_options, readout=16).eval()
    assert net.out_feat is None and net.readout is not None
    with torch.no_grad():
        errors = check_equivariance(lambda x: net(x, torch.full((x.shape[0],), 0.3)), spec=SPEC, n_atoms=7,
                                    batch=3, atol=1e-4)
        assert max(errors.values()) < 1e-4  # types from scalars and vector norms stay invariant
        f = torch.randn(5, net.hidden.dim)
        g = f.clone()
        g[:, net.n_scalars:] *= 2  # same scalars, longer vectors
        assert (net._invariant_out(f) - net._invariant_out(g)).abs().max() > 1e-4
    report = check_backbone(net, small, batch_size=4, atol=1e-5)
    assert report["padding"] is not None and report["padding"] < 1e-5


def test_a_broken_network_fails_the_check(tiny_net):
    """The equivariance check has teeth: absolute positions leaking into the output are caught."""
    def leaky(x):
        out = tiny_net(x, torch.zeros(x.shape[0]))
        return out + 0.01 * x.roll(1, dims=1)

    with torch.no_grad(), pytest.raises(AssertionError, match="not equivariant"):
        check_equivariance(leaky, spec=SPEC, n_atoms=5)


def test_backbone_contract_padding_and_independence(small, tiny_options):
    spec = plugins.get_backbone("e3nn")
    report = check_backbone(spec, small, options=tiny_options, batch_size=4, atol=1e-5)
    assert report["padding"] is not None and report["padding"] < 1e-5  # padded atoms never reach real ones
    assert report["independence"] < 1e-5


def _rotate(x, rot, spec=SPEC):
    fields = spec.unpack(x)
    fields["pos"] = torch.einsum("bnd,bed->bne", fields["pos"], rot)
    return spec.pack(fields)


@pytest.mark.parametrize("sampler", ["heun", "dpmpp_2m"])
def test_sampled_trajectories_are_equivariant(small, tiny_net, sampler):
    """Rotating (or reflecting) the initial noise rotates the whole deterministic trajectory's result."""
    denoiser = Denoiser(tiny_net, Parameterization(kind="edm", sigma_data=0.6))
    batch = small.get_batch(torch.arange(3))
    project = projector(SPEC, batch.padding)

    def d(x, sigma):
        return project(denoiser(x, sigma, padding=batch.padding))

    sigmas = sigma_grid(EDM(), 6, "karras")
    g = torch.Generator().manual_seed(0)
    x_t = project(torch.randn(batch.x.shape, generator=g)) * sigmas[0]
    rot = random_rotation(3, 3, g)
    rot[1, :, 0] *= -1  # sample 1 gets a reflection
    fn = plugins.get_sampler(sampler).fn
    with torch.no_grad():
        x0 = fn(d, x_t, sigmas)
        x0_rot = fn(d, _rotate(x_t, rot), sigmas)
    scale = float(x0.abs().max())
    assert float((x0_rot - _rotate(x0, rot)).abs().max()) < 1e-4 * max(1.0, scale)


def test_every_sample_has_zero_centre_of_mass_and_zero_padding(small, tiny_net):
    denoiser = Denoiser(tiny_net, Parameterization(kind="edm", sigma_data=0.6))
    padding = small.get_batch(torch.arange(6)).padding
    with torch.no_grad():
        out = sample(denoiser, shape=small.sample_shape, n=6, seed=1, sampler="euler", steps=4, spec=SPEC,
                     padding=padding)
    pos, real = SPEC.unpack(out.x)["pos"], SPEC.unpack(padding)["pos"]
    com = (pos * real).sum(1) / real.sum(1)
    assert com.abs().max() < 1e-5
    assert (out.x * (1 - padding)).abs().max() == 0


def test_conformer_backbone_equivariance_with_the_graph(tiny_options):
    """Coordinates rotate / reflect with the input; permuting atoms together with their graph
    permutes the output."""
    mols = embed_smiles(["CC(=O)N", "OCCO"], n_conformers=2, progress=False)
    ds = ConformerDataset(mols, max_atoms=10)
    torch.manual_seed(0)
    net = EquivariantDenoiser(POS_SPEC, graph_cond=True, cond_types=len(ELEMENTS), **tiny_options).eval()
    b = ds.get_batch(torch.tensor([0, 2]))
    assert b.cond["edges"][0, 0, 1] in (1, 2) and b.cond["atom_types"].shape == (2, 10, len(ELEMENTS))
    x = b.x + 0.3 * POS_SPEC.project(torch.randn(b.x.shape), b.padding)
    c = torch.tensor([0.1, -0.4])
    kw = {"padding": b.padding, **b.cond}
    rot = random_rotation(2, 3, torch.Generator().manual_seed(1))
    rot[0, :, 0] *= -1
    with torch.no_grad():
        y = net(x, c, **kw)
        assert (net(_rotate(x, rot, POS_SPEC), c, **kw) - _rotate(y, rot, POS_SPEC)).abs().max() < 1e-4
        n = int(b.padding[0, :, 0].sum())
        perm = torch.cat([torch.randperm(n, generator=torch.Generator().manual_seed(2)), torch.arange(n, 10)])
        cond_p = {"atom_types": b.cond["atom_types"][:, perm], "edges": b.cond["edges"][:, perm][:, :, perm]}
        y_p = net(x[:, perm], c, padding=b.padding[:, perm], **cond_p)
    assert (y_p[0] - y[0, perm]).abs().max() < 1e-4
    with pytest.raises(ValueError, match="needs cond atom_types"):
        net(x, c, padding=b.padding)


def test_graph_classes():
    mol = embed_smiles(["CC#N"], progress=False)[0]
    types, edges = graph_of(mol, 8)
    assert types[:6].sum(1).tolist() == [1.0] * 6 and types[6:].sum() == 0
    assert edges[1, 2] == 3 and edges[0, 1] == 1 and edges[0, 2] == 5  # triple bond; 2 bonds apart
    assert (edges.diagonal() == 0).all() and (edges[6:] == 0).all()
