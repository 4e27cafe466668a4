"""Pictures and files of generated molecules: a 2D depiction grid (RDKit Draw), a 3D trajectory of
one molecule's denoising, and SDF / XYZ files."""

from __future__ import annotations

from pathlib import Path

from rdkit import Chem
from rdkit.Chem import Draw
from rdkit.Chem.Draw import rdMolDraw2D

from polydiff.diffusion import Batch

from .chem import perceive
from .data import decode
from .io import write_sdf, write_xyz

ELEMENT_COLOURS = {"H": "#d0d0d0", "C": "#404040", "N": "#3050f8", "O": "#ff0d0d", "F": "#90e050", "P": "#ff8000",
                   "S": "#e0c000", "Cl": "#1ff01f", "Br": "#a62929"}


def _depictable(batch: Batch, k: int) -> tuple[list[Chem.Mol], list[str]]:
    mols, legends = [], []
    for i, m in enumerate(decode(batch.select(slice(0, k)))):
        p = perceive(m)
        mol = Chem.Mol(p.mol)
        try:
            Chem.SanitizeMol(mol)
            mol = Chem.RemoveHs(mol)
        except Exception:  # invalid molecules: drawn as perceived, hydrogens included, charges
            for a in mol.GetAtoms():  # dropped (RDKit's drawer rejects e.g. H2+ from a noisy sample)
                a.SetFormalCharge(0)
                a.SetNumRadicalElectrons(0)
            mol.UpdatePropertyCache(strict=False)
        mol.RemoveAllConformers()
        try:
            mol = rdMolDraw2D.PrepareMolForDrawing(mol, kekulize=False)
            label = p.smiles if p.valid else "invalid"
        except Exception:  # RDKit cannot lay out some garbage (early checkpoints): leave the cell empty
            mol, label = Chem.Mol(), "undrawable"
        mols.append(mol)
        legends.append(f"{i}: {label}"[:28])
    return mols, legends


def plot_molecules(samples: Batch, reference: Batch | None, path: Path, *, k: int = 16) -> None:
    """A grid of 2D depictions (bonds perceived from 3D) of the first ``k`` samples, and below them
    (when given) the first reference molecules."""
    mols, legends = _depictable(samples, k)
    if reference is not None:
        ref, ref_legends = _depictable(reference, min(k, 8))
        mols += ref
        legends += [f"data {s}" for s in ref_legends]
    img = Draw.MolsToGridImage(mols, molsPerRow=4, subImgSize=(220, 180), legends=legends)
    img.save(str(path))


def plot_trajectory(frames: list[Batch], path: Path) -> None:
    """3D scatter of the first molecule at six points of its denoising path, coloured by the atom
    type decoded at that step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pick = sorted({round(i * (len(frames) - 1) / 5) for i in range(6)})
    fig = plt.figure(figsize=(3.2 * len(pick), 3.4))
    final = decode(frames[-1].select(slice(0, 1)))[0]
    lim = float(abs(final.positions).max()) * 1.2 + 0.5 if len(final) else 1.0
    for k, i in enumerate(pick):
        m = decode(frames[i].select(slice(0, 1)))[0]
        ax = fig.add_subplot(1, len(pick), k + 1, projection="3d")
        p = m.positions
        ax.scatter(p[:, 0], p[:, 1], p[:, 2], c=[ELEMENT_COLOURS.get(e, "k") for e in m.elements], s=40,
                   edgecolors="k", linewidths=0.3)
        scale = max(lim, float(abs(p).max()) if len(p) else 0.0)  # early frames are noise: zoom out
        ax.set(xlim=(-scale, scale), ylim=(-scale, scale), zlim=(-scale, scale), xticks=[], yticks=[], zticks=[],
               title=f"step {i}/{len(frames) - 1}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def save_molecules(samples: Batch, directory: Path) -> list[Path]:
    """Write the samples as ``molecules.sdf`` (bonds perceived from 3D; names carry validity and
    SMILES) and ``molecules.xyz`` (raw coordinates, every sample)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = decode(samples)
    perceptions = [perceive(m) for m in arrays]
    names = [f"sample {i} {p.smiles if p.valid else 'invalid'}" for i, p in enumerate(perceptions)]
    sdf = write_sdf([p.mol for p in perceptions], directory / "molecules.sdf", names=names)
    return [sdf, write_xyz(arrays, directory / "molecules.xyz")]
