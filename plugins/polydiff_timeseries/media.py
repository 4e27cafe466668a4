"""What ``polydiff impute`` writes for series (``ModalitySpec.save_imputation``): a CSV of the sample
quantiles in data units, one row per (series, feature, time step), with the user's feature names and
time stamps when the dataset knows them, and a picture of the forecast bands in data units."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from polydiff.diffusion import Imputation, in_data_units, weibull_levels

from .plots import plot_imputation

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _root_and_rows(dataset: Any, n: int) -> tuple[Any, list[int]]:
    """The dataset holding names and time stamps, and the row of each imputed item in it (a held-out
    :class:`~polydiff.diffusion.data.Subset` maps item i to ``indices[i]``)."""
    indices = getattr(dataset, "indices", None)
    root = getattr(dataset, "dataset", dataset) if indices is not None else dataset
    rows = [int(i) for i in indices[:n]] if indices is not None else list(range(n))
    return root, rows


def feature_names(dataset: Any, k: int) -> list[str]:
    names = list(getattr(dataset, "features", None) or [])
    return names if len(names) == k else [f"x{i}" for i in range(k)]


def time_stamps(root: Any, rows: Sequence[int], length: int) -> list[list[str]] | None:
    """Per item, the labels of its ``length`` steps from the dataset's ``timestamps`` (windows x
    steps), or ``None`` when the dataset has none."""
    stamps = getattr(root, "timestamps", None)
    if stamps is None:
        return None
    out = [[str(t) for t in list(stamps[r])[:length]] for r in rows]
    return out if all(len(o) == length for o in out) else None


def save_imputation(imp: Imputation, dataset: Any, stem: Path) -> list[Path]:
    """``stem.csv`` (quantiles at Weibull positions, mean, truth, given / held-out flags, data units) and
    ``stem-data-units.png``; returns both paths."""
    n, _, k, length = imp.samples.shape
    root, rows = _root_and_rows(dataset, n)
    data = in_data_units(imp, root)
    names = feature_names(root, k)
    times = time_stamps(root, rows, length)
    levels = weibull_levels(torch.tensor(QUANTILES, dtype=torch.float64), imp.n_samples)  # as coverage_90's interval
    qs = torch.quantile(data.samples.double(), levels, dim=1)
    mean = data.samples.double().mean(1)
    known = (imp.given + imp.target) > 0
    real = imp.padding > 0 if imp.padding is not None else torch.ones_like(known)
    path = Path(f"{stem}.csv")
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item", "dataset_row", "feature", "step", "time", "truth", "given", "held_out", "mean",
                    *(f"q{round(q * 100):02d}" for q in QUANTILES)])
        for i in range(n):
            for c in range(k):
                for t in range(length):
                    if not real[i, c, t]:
                        continue
                    truth = f"{float(data.truth[i, c, t]):.6g}" if known[i, c, t] else ""
                    w.writerow([i, rows[i], names[c], t, times[i][t] if times else "", truth,
                                int(imp.given[i, c, t] > 0), int(imp.target[i, c, t] > 0),
                                f"{float(mean[i, c, t]):.6g}",
                                *(f"{float(qs[j, i, c, t]):.6g}" for j in range(len(QUANTILES)))])
    picture = Path(f"{stem}-data-units.png")
    plot_imputation(data, picture, names=names, times=times, units=getattr(root, "units", "") or "data units")
    return [path, picture]


__all__ = ["QUANTILES", "feature_names", "save_imputation", "time_stamps"]
