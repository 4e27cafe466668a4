"""Pictures of series: imputations with median and 50% / 90% bands (plus the PIT histogram), samples
beside data, and the denoising path. All take model-space tensors ``[..., K, L]``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from polydiff import Batch
from polydiff.diffusion import Imputation, weibull_levels

from .metrics import pit_histogram, pit_values


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _real(x: Tensor, padding: Tensor | None) -> np.ndarray:
    """As numpy (matplotlib takes no tensors), NaN on padded steps so lines stop where a series ends."""
    x = x.double().cpu()
    return (x if padding is None else torch.where(padding.cpu() > 0, x, torch.full_like(x, float("nan")))).numpy()


def plot_imputation(imputation: Imputation, path: Path, *, series: int = 3, features: int = 3,
                    names: Sequence[str] | None = None, times: Sequence[Sequence[str]] | None = None,
                    units: str = "") -> None:
    """Up to ``series`` x ``features`` panels: given points (black), held-out truth (red crosses), the
    sample median with 50% and 90% bands; a last row shows the PIT histogram of all targets.
    ``names``: feature names for the titles; ``times``: per series, its steps' time stamps (the first
    and last label the x axis); ``units``: the y axis label (e.g. ``"data units"``)."""
    plt = _pyplot()
    samples, truth = imputation.samples.double().cpu(), imputation.truth.double().cpu()
    given, target = imputation.given.cpu() > 0, imputation.target.cpu() > 0
    pad = None if imputation.padding is None else imputation.padding.cpu()
    n, s, k, length = samples.shape
    rows = list(range(min(n, series)))
    # the bands coverage_90 scores: Weibull positions, so the 90% band holds 90% of new draws
    qs = torch.quantile(samples, weibull_levels(torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95], dtype=samples.dtype), s),
                        dim=1)
    cols = min(k, features)
    fig, axes = plt.subplots(len(rows) + 1, cols, figsize=(4.2 * cols, 2.4 * (len(rows) + 1)), squeeze=False)
    t = np.arange(length)
    for r, i in enumerate(rows):
        # the features with the most held-out values are the interesting ones
        order = target[i].sum(-1).argsort(descending=True)[:cols].tolist()
        for c, f in enumerate(order):
            ax = axes[r][c]
            q = [_real(qs[j, i, f], None if pad is None else pad[i, f]) for j in range(5)]
            ax.fill_between(t, q[0], q[4], color="C0", alpha=0.2, lw=0, label="90%")
            ax.fill_between(t, q[1], q[3], color="C0", alpha=0.4, lw=0, label="50%")
            ax.plot(t, q[2], color="C0", lw=1.2, label=f"median of {s}")
            y, shown, held = truth[i, f].numpy(), given[i, f].numpy(), target[i, f].numpy()
            ax.plot(t[shown], y[shown], "k.", ms=3, label="given")
            ax.plot(t[held], y[held], "rx", ms=4, label="held out")
            ax.set_title(f"series {i}, {names[f] if names else f'feature {f}'}", fontsize=9)
            if times:
                ax.set_xlabel(f"step ({times[i][0]} to {times[i][-1]})", fontsize=7)
            if units and c == 0:
                ax.set_ylabel(units, fontsize=8)
            if r == 0 and c == 0:
                ax.legend(fontsize=6, loc="best")
        for c in range(len(order), cols):
            axes[r][c].axis("off")
    hist = (pit_histogram(pit_values(imputation)) if bool(target.any()) else torch.zeros(10)).numpy()
    ax = axes[-1][0]
    ax.bar((np.arange(len(hist)) + 0.5) / len(hist), hist, width=1 / len(hist), color="C2", edgecolor="k")
    ax.axhline(1 / len(hist), color="k", ls="--", lw=1)
    ax.set(title=f"PIT histogram ({int(target.sum())} targets; flat = calibrated)", xlim=(0, 1))
    for c in range(1, cols):
        axes[-1][c].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_series(samples: Batch, reference: Batch | None, path: Path, *, features: int = 3, lines: int = 8) -> None:
    """One panel per feature: data series (grey, left) beside generated ones (colour, right)."""
    plt = _pyplot()
    panels = ([("data", reference)] if reference is not None else []) + [("samples", samples)]
    k = min(samples.x.shape[1], features)
    fig, axes = plt.subplots(k, len(panels), figsize=(5 * len(panels), 2.2 * k), squeeze=False, sharey="row")
    for c, (title, batch) in enumerate(panels):
        x = _real(batch.x, batch.padding)
        for f in range(k):
            ax = axes[f][c]
            for i in range(min(lines, len(x))):
                ax.plot(x[i, f], lw=0.8, alpha=0.8, color="0.4" if title == "data" else f"C{i % 10}")
            ax.set_title(f"{title}: feature {f} ({len(x)} series)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_series_trajectory(frames: list[Batch], path: Path, *, lines: int = 4) -> None:
    """Feature 0 of a few series at six points of the sampling path, noise (left) to data (right)."""
    plt = _pyplot()
    pick = sorted({round(i * (len(frames) - 1) / 5) for i in range(6)})
    fig, axes = plt.subplots(1, len(pick), figsize=(3 * len(pick), 2.6), squeeze=False)
    for ax, j in zip(axes[0], pick, strict=True):
        x = _real(frames[j].x, frames[j].padding)
        for i in range(min(lines, len(x))):
            ax.plot(x[i, 0], lw=0.8, color=f"C{i}")
        ax.set_title(f"step {j}/{len(frames) - 1}", fontsize=9)
        ax.set_xticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
