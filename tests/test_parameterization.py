import math

import pytest
import torch

from polydiff.diffusion.losses import WEIGHTINGS, Weighting, denoising_loss, noisy
from polydiff.diffusion.parameterization import (
    PARAMETERIZATIONS,
    Denoiser,
    Parameterization,
    convert,
    from_prediction,
    from_x0,
    to_x0,
)
from polydiff.diffusion.schedules import Discrete, RectifiedFlow, VPCosine, VPLinear
from polydiff.diffusion.state import Batch

SHAPES = [(5, 2), (3, 2, 4, 4), (4, 7, 3)]
PRED = ["x0", "eps", "v", "score", "flow"]


def _data(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)
    sigma = torch.exp(torch.randn(shape[0], generator=g, dtype=torch.float64))
    return x0, eps, sigma, noisy(x0, sigma, eps)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", PRED)
def test_prediction_round_trips(shape, kind):
    x0, eps, sigma, x = _data(shape)
    torch.testing.assert_close(to_x0(kind, from_x0(kind, x0, x, sigma), x, sigma), x0)
    for other in PRED:
        back = convert(convert(from_x0(kind, x0, x, sigma), kind, other, x, sigma), other, kind, x, sigma)
        torch.testing.assert_close(back, from_x0(kind, x0, x, sigma))


def test_predictions_match_their_paper_definitions():
    x0, eps, sigma, x = _data((6, 3))
    s = sigma[:, None]
    alpha, sigma_vp = 1 / torch.sqrt(1 + s**2), s / torch.sqrt(1 + s**2)
    torch.testing.assert_close(from_x0("eps", x0, x, sigma), eps)
    torch.testing.assert_close(from_x0("v", x0, x, sigma), alpha * eps - sigma_vp * x0)  # Salimans & Ho
    torch.testing.assert_close(from_x0("flow", x0, x, sigma), eps - x0)  # d/dt of (1-t) x0 + t eps
    torch.testing.assert_close(from_x0("score", x0, x, sigma), -eps / s)  # grad log N(x; x0, s^2)


class Oracle(torch.nn.Module):
    """A backbone that returns the exact regression target: the denoiser must then give x0."""

    def __init__(self, p, x0, x, sigma):
        super().__init__()
        self.f = p.target(x, x0, sigma)

    def forward(self, x_in, c_noise, **cond):
        return self.f


@pytest.mark.parametrize("kind", PARAMETERIZATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_preconditioned_oracle_denoises_exactly(kind, shape):
    x0, eps, sigma, x = _data(shape)
    p = Parameterization(kind=kind, sigma_data=0.7)
    torch.testing.assert_close(Denoiser(Oracle(p, x0, x, sigma), p)(x, sigma), x0)


def test_v_equals_edm_with_unit_sigma_data_up_to_sign():
    x0, eps, sigma, x = _data((4, 3))
    v = Parameterization(kind="v").target(x, x0, sigma)
    e = Parameterization(kind="edm", sigma_data=1.0).target(x, x0, sigma)
    torch.testing.assert_close(v, -e)


def test_flow_network_sees_the_interpolant_and_time():
    x0, eps, sigma, x = _data((4, 3))
    c = Parameterization(kind="flow").coefficients(sigma)
    t = sigma / (1 + sigma)
    torch.testing.assert_close(c.c_in[:, None] * x, (1 - t[:, None]) * x0 + t[:, None] * eps)
    torch.testing.assert_close(c.c_noise, t)


def test_denoiser_rejects_wrong_backbone_shape():
    class Bad(torch.nn.Module):
        def forward(self, x, c_noise):
            return x[:, :1]

    with pytest.raises(ValueError, match="backbone returned shape"):
        Denoiser(Bad())(torch.randn(2, 3), 1.0)


@pytest.mark.parametrize(("kind", "schedule"), [("eps", Discrete()), ("v", VPCosine()), ("x0", VPLinear()),
                                                 ("flow", RectifiedFlow())], ids=lambda v: getattr(v, "name", v))
def test_from_prediction_feeds_the_model_its_own_input(kind, schedule):
    x0, eps, sigma, x = _data((5, 2))
    sigma = sigma.clamp(0.05, 50)
    x = noisy(x0, sigma, eps)

    def model(x_t, t):  # a perfect model in the schedule's own variables
        alpha, sig = schedule.alpha_sigma(t / 999 if isinstance(schedule, Discrete) else t)
        torch.testing.assert_close(x_t, alpha[:, None] * x0 + sig[:, None] * eps)
        return {"eps": eps, "x0": x0, "flow": eps - x0, "v": alpha[:, None] * eps - sig[:, None] * x0}[kind]

    scale = 999.0 if isinstance(schedule, Discrete) else 1.0
    torch.testing.assert_close(from_prediction(model, kind, schedule=schedule, time_scale=scale)(x, sigma), x0)


@pytest.mark.parametrize("norm", ["l2", "l1"])
@pytest.mark.parametrize("kind", PARAMETERIZATIONS)
def test_uniform_weighting_is_the_plain_error_of_the_target(kind, norm):
    """MSE (l2) or L1 error of the parameterization's own target."""
    x0, eps, sigma, x = _data((8, 4))
    p = Parameterization(kind=kind, sigma_data=0.5)
    denoised = x0 + 0.1 * torch.randn_like(x0)
    c = p.coefficients(sigma)
    f_hat = (denoised - c.c_skip[:, None] * x) / c.c_out[:, None]
    err = f_hat - p.target(x, x0, sigma)
    expected = (err**2 if norm == "l2" else err.abs()).mean(1)
    got = denoising_loss(denoised, x0, sigma, Weighting(kind="uniform")(sigma, p), norm=norm)
    torch.testing.assert_close(got, expected.float(), rtol=1e-4, atol=1e-6)


def test_l1_takes_the_root_of_a_per_entry_weight():
    """A per-field sigma_data gives a weight per entry; L1 weighs |D - x0| by its square root, entry by entry."""
    x0, eps, sigma, x = _data((3, 4))
    d = x0 + torch.randn_like(x0)
    w = torch.rand(3, 4, dtype=torch.float64) + 0.5
    got = denoising_loss(d, x0, sigma, w, norm="l1")
    torch.testing.assert_close(got, (w.sqrt() * (d - x0).abs()).mean(1).float())


def test_l1_training_learns_the_median_and_l2_the_mean():
    """A constant denoiser fitted at a high noise level: the posterior there is the data distribution,
    skewed (70% zeros, 30% ones), so L1 settles at its median 0 and L2 at its mean 0.3."""
    from polydiff.training.objective import diffusion_loss

    x0 = (torch.arange(1000) % 10 >= 7).float()[:, None]
    sigma = torch.full((1000,), 50.0)
    eps = torch.zeros_like(x0)  # the level is all that matters to a constant denoiser
    fitted = {}
    for norm in ("l1", "l2"):
        const = torch.nn.Parameter(torch.tensor(0.5))
        den = lambda x, s, const=const, **_: const.expand_as(x)  # noqa: E731
        opt = torch.optim.Adam([const], lr=0.01)
        for _ in range(400):
            opt.zero_grad()
            loss = diffusion_loss(den, Batch(x=x0), sigma=sigma, eps=eps, weighting=Weighting(kind="edm", norm=norm),
                                  parameterization=Parameterization(kind="edm", sigma_data=0.5)).mean()
            loss.backward()
            opt.step()
        fitted[norm] = float(const.detach())
    assert abs(fitted["l1"]) < 0.02 and abs(fitted["l2"] - 0.3) < 0.02, fitted
    with pytest.raises(ValueError, match="valid: l2, l1"):
        Weighting(norm="huber")  # type: ignore[arg-type]


def test_weightings():
    sigma = torch.tensor([0.01, 0.1, 1.0, 10.0], dtype=torch.float64)
    p = Parameterization(kind="eps")
    snr = sigma**-2
    torch.testing.assert_close(Weighting(kind="snr")(sigma, p), snr)
    torch.testing.assert_close(Weighting(kind="min_snr", gamma=5)(sigma, p), snr.clamp(max=5))
    # uniform eps-loss is the SNR weighting on x0 (Ho et al.'s L_simple)
    torch.testing.assert_close(Weighting(kind="uniform")(sigma, p), snr)
    edm = Weighting(kind="edm")(sigma, Parameterization(kind="edm", sigma_data=0.5))
    torch.testing.assert_close(edm, (sigma**2 + 0.25) / (sigma * 0.5) ** 2)
    # Kingma & Gao's sigmoid weighting: eps-weight w(lambda) = sigmoid(b - lambda), 1/2 at lambda = b
    for b in (-2.0, 0.0, 3.0):
        at_b = torch.tensor([math.exp(-b / 2)], dtype=torch.float64)  # sigma with logSNR = b
        torch.testing.assert_close(Weighting(kind="sigmoid", bias=b)(at_b, p) / at_b**-2,
                                   torch.tensor([0.5], dtype=torch.float64))
    w = Weighting(kind="sigmoid", bias=0.0)(sigma, p) / snr
    assert torch.all(w[1:] > w[:-1]), "the eps-weight grows with noise (falls with logSNR)"
    assert set(WEIGHTINGS) == {"uniform", "snr", "min_snr", "edm", "sigmoid"}
    with pytest.raises(ValueError, match="valid: uniform"):
        Weighting(kind="p2")  # type: ignore[arg-type]


def test_loss_respects_padding_and_target_masks():
    x0, eps, sigma, x = _data((3, 6))
    d = x0 + 1.0
    pad = torch.tensor([[1, 1, 1, 0, 0, 0]] * 3, dtype=torch.float64)
    w = torch.ones(3, dtype=torch.float64)
    base = denoising_loss(d, x0, sigma, w, padding=pad)
    d2 = d.clone()
    d2[:, 3:] += 100.0  # padded entries may be anything
    torch.testing.assert_close(denoising_loss(d2, x0, sigma, w, padding=pad), base)
    torch.testing.assert_close(base, torch.ones(3, dtype=torch.float32))
    empty = denoising_loss(d, x0, sigma, w, target=torch.zeros_like(x0))
    assert torch.all(empty == 0), "an empty target set gives zero loss, not NaN"


def test_an_l1_run_trains_samples_and_evaluates_without_a_likelihood(tmp_path, capsys):
    """The CLI end to end with weighting.norm = l1: evaluate says why it gives no likelihood (the
    probability flow needs D to be the posterior mean) rather than reporting a meaningless number."""
    import json

    from polydiff.app.cli import main

    out = tmp_path / "l1"
    tiny = ["train.steps=30", "train.batch_size=64", "data.n=256", "model.width=32", "model.depth=1"]
    assert main(["train", "points", "weighting.norm=l1", *tiny, "--out", str(out), "--quiet"]) == 0
    assert main(["sample", str(out), "--steps", "5", "--n", "64", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    res = json.loads(captured.out)
    assert res["sliced_w2"] > 0 and "nll_nats_per_dim" not in res
    assert "no likelihood (nll_nats_per_dim)" in captured.err and "weighting.norm = l2" in captured.err
