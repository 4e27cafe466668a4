"""The time-series prior fill: np.interp per feature along time (flat = LOCF / NOCB at the ends)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("statsmodels")
from polydiff import plugins
from polydiff.testing import check_prior_fill


def test_fill_is_np_interp_per_feature_with_flat_ends() -> None:
    fill = plugins.get_modality("timeseries").prior_fill
    assert fill is not None
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 40))
    given = rng.random((3, 4, 40)) < 0.3
    given[0, 0] = False  # a feature with nothing given: 0 (the training mean)
    given[1, 2, :] = False
    given[1, 2, [5, 30]] = True  # hidden steps before 5 and after 30: LOCF / NOCB
    out = fill(torch.tensor(x * given), torch.tensor(given, dtype=torch.float64)).numpy()
    t = np.arange(40)
    for i in range(3):
        for k in range(4):
            g = given[i, k]
            want = np.interp(t, t[g], x[i, k, g]) if g.any() else np.zeros(40)
            np.testing.assert_allclose(out[i, k], want, rtol=0, atol=1e-12)
    assert np.all(out[1, 2, :5] == x[1, 2, 5]) and np.all(out[1, 2, 31:] == x[1, 2, 30])


def test_conformance_of_the_fill() -> None:
    report = check_prior_fill("timeseries", dataset_options={"length": 26, "stride": 26})
    assert report["batch_shape"] == [4, 1, 26] and report["fill_mae"] >= 0
