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


def test_the_csdi_network_reads_the_fill_on_hidden_entries() -> None:
    from polydiff_timeseries import CSDIBackbone

    net = CSDIBackbone(2, channels=8, layers=1, heads=2, time_dim=8, feature_dim=4, emb_dim=8).eval()
    torch.nn.init.normal_(net.head[-1].weight, std=0.5)  # the output layer starts at zero
    g = torch.Generator().manual_seed(0)
    x, mask = torch.randn(1, 2, 10, generator=g), (torch.rand(1, 2, 10, generator=g) < 0.5).float()
    fill = plugins.get_modality("timeseries").prior_fill
    assert fill is not None
    with torch.no_grad():
        zeros = net(x, torch.zeros(1), x_cond=x * mask, cond_mask=mask)
        filled = net(x, torch.zeros(1), x_cond=fill(x * mask, mask), cond_mask=mask)
        nan = net(x, torch.zeros(1), x_cond=torch.where(mask > 0, x, torch.nan), cond_mask=mask)
    assert not torch.allclose(zeros, filled)  # model.prior_fill = condition changes what the network sees
    assert torch.equal(nan, zeros)  # a NaN on a hidden entry reads as 0
