"""The conformer modality's baselines, scored beside every model with COV-R / MAT-R on the SAME graphs:
the model's samples take their graphs from the training split with the samples file's seed
(``draw_conditioning``), and each baseline draws the same graphs, as many conformers per graph.

* ``etkdg``: RDKit ETKDGv3 conformers of those molecules (no force field), the reference method;
* ``random_coordinates`` (floor): Gaussian coordinates with each molecule's own spread;
* ``real_conformers`` (ceiling): real conformers of those graphs from the training split.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
from rdkit import Chem
from torch import Tensor

from polydiff.diffusion import Batch, remove_com
from polydiff.evaluation import BaselineContext
from polydiff.plugins import BaselineSpec, NotApplicable

from .baselines import gaussian_positions
from .chem import MoleculeError, embed


def _graph_key(types: Tensor, edges: Tensor) -> bytes:
    """The exact graph of one item (atom order included): elements of the real atoms and their pair classes."""
    n = int((types.sum(-1) > 0).sum())
    return types[:n].argmax(-1).numpy().tobytes() + b"|" + edges[:n, :n].numpy().astype(np.int64).tobytes()


def drawn_graphs(ctx: BaselineContext) -> tuple[dict[str, Tensor], Tensor | None, list[bytes]]:
    """The graphs (cond), padding and graph keys of the ``ctx.n`` items the model's samples were
    drawn for (``polydiff evaluate`` passes the samples file's conditions in ``ctx``)."""
    cond, padding = ctx.cond, ctx.padding
    if "atom_types" not in cond or "edges" not in cond:
        raise NotApplicable("no molecular graphs of the model's samples (cond atom_types / edges) to answer for")
    keys = [_graph_key(cond["atom_types"][i], cond["edges"][i]) for i in range(ctx.n)]
    return cond, padding, keys


def real_conformers(ctx: BaselineContext) -> Batch:
    """For each drawn graph, a real conformer of that graph from the training split (distinct ones
    per graph in a seeded order; repeated only when the split holds fewer than were drawn)."""
    cond, padding, keys = drawn_graphs(ctx)
    train = ctx.train.get_batch(torch.arange(len(ctx.train)))
    pool: dict[bytes, list[int]] = defaultdict(list)
    for j in range(len(ctx.train)):
        pool[_graph_key(train.cond["atom_types"][j], train.cond["edges"][j])].append(j)
    g = torch.Generator().manual_seed(ctx.seed + 3)
    order = {k: [v[int(i)] for i in torch.randperm(len(v), generator=g)] for k, v in sorted(pool.items())}
    used: dict[bytes, int] = defaultdict(int)
    picks = []
    for k in keys:
        picks.append(order[k][used[k] % len(order[k])])
        used[k] += 1
    return Batch(x=train.x[torch.tensor(picks)], padding=padding, cond=cond)


def random_coordinates(ctx: BaselineContext) -> Batch:
    """The drawn graphs at Gaussian positions with the spread of a real conformer of each (CoM-free)."""
    real = real_conformers(ctx)
    atoms = (real.cond["atom_types"].sum(-1, keepdim=True) > 0).to(real.x.dtype)
    return Batch(x=gaussian_positions(real.x, atoms, ctx.seed + 7), padding=real.padding, cond=real.cond)


def etkdg_conformers(mol: Chem.Mol, n: int, seed: int) -> np.ndarray:
    """``[n, atoms, 3]`` ETKDGv3 conformers of ``mol`` (explicit H, its stereochemistry kept), no force
    field (:func:`~polydiff_molecule.chem.embed`); conformers ETKDG does not find stay all zero
    (a miss in COV-R / MAT-R, never a copy of another conformer)."""
    out = np.zeros((n, mol.GetNumAtoms(), 3))
    try:
        embedded = embed(Chem.Mol(mol), seed=seed, n_conformers=n, mmff=False)
    except MoleculeError:
        return out
    for i, conf in enumerate(embedded.GetConformers()):
        out[i] = np.asarray(conf.GetPositions())[:mol.GetNumAtoms()]
    return out


def etkdg(ctx: BaselineContext) -> Batch:
    """ETKDGv3 conformers of the drawn graphs' molecules, as many per graph as were drawn."""
    cond, padding, keys = drawn_graphs(ctx)
    mols = getattr(ctx.train, "mols", None)
    if mols is None:
        raise NotApplicable("the dataset keeps no RDKit molecules (ConformerDataset.mols) to embed")
    types, edges = getattr(ctx.train, "types"), getattr(ctx.train, "edges")  # noqa: B009  (per molecule, as mols)
    template: dict[bytes, int] = {}
    for k in range(len(mols)):
        template.setdefault(_graph_key(types[k], edges[k]), k)
    rows: dict[bytes, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        rows[key].append(i)
    x = torch.zeros(ctx.n, *ctx.train.sample_shape)
    for j, (key, items) in enumerate(sorted(rows.items())):
        mol = mols[template[key]]
        pos = etkdg_conformers(mol, len(items), ctx.seed + 1000 * j)
        x[torch.tensor(items), :mol.GetNumAtoms()] = torch.from_numpy(pos).to(x.dtype)
    atoms = (cond["atom_types"].sum(-1, keepdim=True) > 0).to(x.dtype)
    return Batch(x=remove_com(x, atoms), padding=padding, cond=cond)


CONFORMER_BASELINES = (
    BaselineSpec(name="etkdg", fn=etkdg,
                 description="RDKit ETKDGv3 (no force field) conformers of the same molecules, as many per graph; "
                             "it sees the data's stereochemistry, which the graph given to the model lacks"),
    BaselineSpec(name="random_coordinates", role="floor", fn=random_coordinates,
                 description="the same graphs at Gaussian positions with each molecule's own spread"),
    BaselineSpec(name="real_conformers", role="ceiling", fn=real_conformers,
                 description="real conformers of the same graphs from the training split (the data's own score)"),
)

__all__ = ["CONFORMER_BASELINES", "drawn_graphs", "etkdg", "etkdg_conformers", "random_coordinates",
           "real_conformers"]
