"""The built-in toy modality ``points``: N-D Gaussian mixtures with an analytic exact denoiser.

It serves the quickstart, the tests and the sampler benchmark: because the true distribution is
known, sampler and model errors are measured exactly (sliced Wasserstein, log-likelihood under the
true mixture).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polydiff.diffusion.data import ArrayDataset, DiffusionDataset
from polydiff.diffusion.gmm import GaussianMixture, random_mixture, ring
from polydiff.diffusion.state import Batch, Field, StateSpec
from polydiff.evaluation.baselines import BaselineContext
from polydiff.exceptions import ConfigError, NotApplicable
from polydiff.files import read_text
from polydiff.reporting import report


class PointsDataset(ArrayDataset):
    """Samples of a known :class:`GaussianMixture`; ``mixture`` gives its exact density/denoiser."""

    def __init__(self, mixture: GaussianMixture, n: int, seed: int) -> None:
        if n < 1:
            raise ValueError(f"data.n must be >= 1 (the number of points to draw), got {n}")
        x, labels = mixture.sample(n, torch.Generator().manual_seed(seed))
        super().__init__(StateSpec((Field("x", (mixture.dim,)),)), x, labels=labels,
                         num_classes=len(mixture.weights))
        self.mixture = mixture


def load_ring(*, n: int = 4096, seed: int = 0, modes: int = 8, radius: float = 1.5,
              std: float = 0.1) -> PointsDataset:
    if modes < 1 or not radius > 0 or not std > 0:
        raise ValueError(f"ring needs data.modes >= 1, data.radius > 0 and data.std > 0; got modes={modes}, "
                         f"radius={radius}, std={std}")
    return PointsDataset(ring(modes, radius, std), n, seed)


def load_mixture(*, n: int = 4096, seed: int = 0, dim: int = 16, modes: int = 6,
                 mixture_seed: int = 0) -> PointsDataset:
    if dim < 1 or modes < 1:
        raise ValueError(f"mixture needs data.dim >= 1 and data.modes >= 1; got dim={dim}, modes={modes}")
    return PointsDataset(random_mixture(dim, modes, seed=mixture_seed), n, seed)


def load_file(*, path: str = "", columns: str = "") -> ArrayDataset:
    """Your own N-D points: a ``.npy`` array ``[n, d]`` or a ``.csv`` (a header row of column names is
    recognised; ``columns = "x,y"`` picks some by name). Every cell must be a number: a non-numeric cell is
    an error naming its row and column; rows with an empty cell are dropped and counted in the summary."""
    import numpy as np

    if not path:
        raise ConfigError("data.path is empty: give a .csv or .npy file of points (one row per point)")
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"data.path {file} is not a file; give a .csv or .npy file of points")
    if file.suffix == ".npy":
        if columns:
            raise ConfigError("data.columns picks CSV columns by name; a .npy file has none (drop it)")
        x = np.load(file, allow_pickle=False)
        names = [f"x{i}" for i in range(x.shape[1])] if x.ndim == 2 else []
    elif file.suffix == ".csv":
        x, names = _read_csv_points(file, columns)
    else:
        raise ConfigError(f"data.path {file}: use a .csv or .npy file of points")
    if x.ndim != 2 or x.shape[1] < 1:
        raise ConfigError(f"{file}: points must be a 2-D table [n, d], got shape {list(x.shape)}")
    keep = np.isfinite(x).all(axis=1)
    if not keep.any():
        raise ConfigError(f"{file}: no row without an empty or non-finite cell")
    report(f"points 'file': {int(keep.sum())} points of {x.shape[1]} dimensions ({', '.join(names)}) from {file}"
           + (f"; {int((~keep).sum())} row(s) with an empty or non-finite cell dropped" if not keep.all() else ""))
    return ArrayDataset(StateSpec((Field("x", (x.shape[1],)),)), torch.from_numpy(x[keep].astype(np.float32)))


def _read_csv_points(file: Path, columns: str) -> tuple[Any, list[str]]:
    import csv

    import numpy as np

    rows = list(csv.reader(read_text(file, "points file").splitlines()))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ConfigError(f"{file} is empty")

    def number(cell: str) -> bool:
        try:
            float(cell)
        except ValueError:
            return not cell.strip()  # an empty cell is missing, not junk
        return True

    header = [c.strip() for c in rows[0]] if not all(number(c) for c in rows[0]) else None
    body = rows[1:] if header else rows
    names = header or [f"x{i}" for i in range(len(rows[0]))]
    wanted = [c.strip() for c in columns.split(",") if c.strip()] or names
    missing = [c for c in wanted if c not in names]
    if missing:
        raise ConfigError(f"{file}: no column(s) {', '.join(missing)}; it has {', '.join(names)}")
    idx = [names.index(c) for c in wanted]
    x = np.full((len(body), len(idx)), np.nan)
    for i, row in enumerate(body):
        if len(row) != len(names):
            raise ConfigError(f"{file} row {i + 1 + bool(header)} has {len(row)} cells, the table {len(names)}")
        for j, k in enumerate(idx):
            cell = row[k].strip()
            if cell and not number(cell):
                raise ConfigError(f"{file} row {i + 1 + bool(header)}, column {names[k]!r}: {cell!r} is not a "
                                  "number (leave a missing value empty; that row is then dropped)")
            x[i, j] = float(cell) if cell else np.nan
    return x, wanted


def _mixture_of(reference: DiffusionDataset) -> GaussianMixture:
    mix = getattr(reference, "mixture", None)
    if mix is None:
        raise NotApplicable("true_nll needs a points dataset with a known mixture as reference")
    return mix


def true_nll(samples: Batch, reference: DiffusionDataset) -> float:
    """Mean negative log-likelihood of the samples under the TRUE mixture, per dimension (nats).
    Low means samples lie where the data is dense; it does not detect missing modes."""
    mix = _mixture_of(reference)
    return float(-mix.log_prob(samples.x).mean() / mix.dim)


def plot_points(samples: Batch, reference: Batch | None, path: Path) -> None:
    """Scatter of the first two coordinates: data (left) beside samples (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ([("data", reference.x)] if reference is not None else []) + [("samples", samples.x)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    lim = _limits([p for _, p in panels])
    for ax, (title, pts) in zip(axes[0], panels, strict=True):
        p = pts.reshape(len(pts), -1).float().cpu()
        ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.5, color="C0" if title == "data" else "C1")
        ax.set(title=f"{title} (n={len(p)})", xlim=lim, ylim=lim, aspect="equal")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_point_trajectory(frames: list[Batch], path: Path) -> None:
    """Snapshots of the sampling path, noise (left) to data (right), on shared axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pick = sorted({round(i * (len(frames) - 1) / 5) for i in range(6)})
    fig, axes = plt.subplots(1, len(pick), figsize=(3 * len(pick), 3.2), squeeze=False)
    data_lim = _limits([frames[-1].x])[1] if frames else 1.0
    for ax, i in zip(axes[0], pick, strict=True):
        p = frames[i].x.reshape(len(frames[i].x), -1).float().cpu()
        # each panel zooms to its own spread: early frames are noise of scale sigma_max
        lim = max(data_lim, float(p[:, :2].abs().quantile(0.99)) * 1.1)
        ax.scatter(p[:, 0], p[:, 1], s=1, alpha=0.5, color="C1")
        ax.set(title=f"step {i}/{len(frames) - 1}  (|x| < {lim:.3g})", xlim=(-lim, lim), ylim=(-lim, lim),
               aspect="equal", xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _limits(arrays: list[Tensor]) -> tuple[float, float]:
    m = max(float(a.reshape(len(a), -1)[:, :2].abs().max()) for a in arrays) * 1.1
    return (-m, m)


# ---- its baselines: the true mixture is known ---------------------------------------------------

def _mixture(ctx: BaselineContext) -> GaussianMixture:
    mixture = getattr(ctx.held_out, "mixture", None)
    if mixture is None:
        raise NotApplicable("the dataset has no known density (only the ring and mixture datasets have one)")
    return mixture


def exact_denoiser_samples(ctx: BaselineContext) -> Batch:
    """``n`` samples of the model's sampler driven by the EXACT denoiser of a dataset that knows its
    mixture (``held_out.mixture``): what any learnt model can at best reach with that sampler."""
    mixture = _mixture(ctx)
    if ctx.sample is None:
        raise NotApplicable("no sampler settings (the exact denoiser is run with the model's sampler)")
    return Batch(x=ctx.sample(mixture.denoise).cpu())


def fresh_mixture_samples(ctx: BaselineContext) -> Batch:
    """``n`` fresh draws from the known mixture: the data's own score."""
    x, _ = _mixture(ctx).sample(ctx.n, torch.Generator().manual_seed(ctx.seed + 1))
    return Batch(x=x)


__all__ = ["PointsDataset", "exact_denoiser_samples", "fresh_mixture_samples", "load_file", "load_mixture", "load_ring",
           "plot_point_trajectory", "plot_points", "true_nll"]
