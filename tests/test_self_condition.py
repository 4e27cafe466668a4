"""Self-conditioning (Chen et al. 2022): what the backbone sees in training and in sampling."""

import pytest
import torch
from torch import nn

from polydiff import Denoiser, Parameterization, plugins, sample
from polydiff.app.config import ConfigError
from polydiff.app.runs import build_denoiser, resolve_config
from polydiff.diffusion.losses import Weighting
from polydiff.diffusion.schedules import EDM, NoiseLevels
from polydiff.training.objective import diffusion_loss, draw_step

SD = 0.5


class Probe(nn.Module):
    """F = a * x_in + b * self_cond, recording every self_cond it is given."""

    supports_self_condition = True

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.3))
        self.b = nn.Parameter(torch.tensor(0.2))
        self.seen: list[torch.Tensor] = []

    def forward(self, x, c_noise, *, self_cond):
        self.seen.append(self_cond.detach().clone())
        return self.a * x + self.b * self_cond


def test_training_feeds_the_detached_first_estimate_to_the_marked_samples():
    probe = Probe()
    d = Denoiser(probe, Parameterization(sigma_data=SD), self_condition=True)
    x0, eps = torch.randn(4, 3), torch.randn(4, 3)
    sigma = torch.tensor([0.1, 0.5, 1.0, 3.0])
    marked = torch.tensor([True, False, True, False])
    loss = diffusion_loss(d, _batch(x0), sigma=sigma, eps=eps, weighting=Weighting(kind="edm"), self_cond=marked)
    assert len(probe.seen) == 2 and probe.seen[0].abs().max() == 0  # first pass: no estimate
    with torch.no_grad():
        first = d(x0 + sigma[:, None] * eps, sigma)
    expected = torch.where(marked[:, None], first / SD, torch.zeros_like(first))
    assert torch.allclose(probe.seen[1], expected, atol=1e-6)
    loss.mean().backward()
    assert probe.b.grad is not None and probe.b.grad.abs() > 0  # the second pass carries the gradient


def test_sampling_feeds_each_call_the_previous_estimate():
    probe = Probe()
    d = Denoiser(probe, Parameterization(sigma_data=SD), self_condition=True)
    outs: list[torch.Tensor] = []
    wrapped = _Recording(d, outs)
    with torch.no_grad():
        res = sample(wrapped, shape=(3,), n=2, seed=0, sampler="heun", steps=4)
    assert len(probe.seen) == res.nfe == len(outs)
    assert probe.seen[0].abs().max() == 0
    for k in range(1, len(outs)):
        assert torch.allclose(probe.seen[k], (outs[k - 1] / SD).clamp(-5, 5), atol=1e-6)


class _Recording(nn.Module):
    def __init__(self, d: Denoiser, outs: list[torch.Tensor]) -> None:
        super().__init__()
        self.d, self.outs, self.self_condition = d, outs, True

    def forward(self, x, sigma, **cond):
        out = self.d(x, sigma, **cond)
        self.outs.append(out.detach().clone())
        return out


def test_draws_are_unchanged_for_models_without_self_conditioning():
    kw = dict(batch_size=8, sample_shape=(2,), schedule=EDM(), noise_levels=NoiseLevels(kind="lognormal"),
              label_dropout=0.1)
    plain = draw_step(torch.Generator().manual_seed(3), **kw)
    selfc = draw_step(torch.Generator().manual_seed(3), **kw, self_condition=0.5)
    assert plain.self_cond is None and selfc.self_cond is not None and selfc.self_cond.dtype == torch.bool
    assert torch.equal(plain.sigma, selfc.sigma) and torch.equal(plain.eps, selfc.eps)
    assert torch.equal(plain.drop_label, selfc.drop_label)
    assert selfc.select(slice(2, 5)).self_cond.shape == (3,)


def test_clear_errors():
    class Plain(nn.Module):
        def forward(self, x, c_noise):
            return x

    with pytest.raises(ValueError, match="takes no self-conditioning input"):
        Denoiser(Plain(), self_condition=True)
    with pytest.raises(ValueError, match="built without self-conditioning"):
        Denoiser(Plain())(torch.zeros(2, 3), 1.0, x_self=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="x_self must have the shape"):
        Denoiser(Probe(), self_condition=True)(torch.zeros(2, 3), 1.0, x_self=torch.zeros(2, 4))
    able = [b.name for b in plugins.backbones() if b.self_condition]
    assert "mlp" in able
    plain = [b.name for b in plugins.backbones("image") if not b.self_condition]
    if plain:  # a first-party backbone without it gets the config error, naming the ones that have it
        with pytest.raises(ConfigError, match="takes no self-conditioning input; backbones that do: .*mlp"):
            resolve_config({"modality": "image", "model": {"backbone": plain[0], "self_condition": True}})


def test_a_self_conditioned_mlp_learns_a_ring(tmp_path):
    from polydiff.diffusion.state import Batch
    from polydiff.evaluation.metrics import sliced_w2
    from polydiff.modalities.points import true_nll
    from polydiff.training.trainer import TrainConfig, Trainer

    config = resolve_config({"modality": "points", "data": {"dataset": "ring"},
                             "model": {"backbone": "mlp", "self_condition": True, "width": 64, "depth": 2}})
    data = plugins.get_dataset("points", "ring").build()
    denoiser = build_denoiser(config, data)
    assert denoiser.self_condition and denoiser.backbone.supports_self_condition
    trainer = Trainer(denoiser=denoiser, dataset=data, schedule=EDM(), noise_levels=NoiseLevels(kind="lognormal"),
                      weighting=Weighting(kind="edm"),
                      config=TrainConfig(steps=600, batch_size=128, lr=3e-3, checkpoint_every=10**6, log_every=10**6,
                                         device="cpu"), run_dir=tmp_path)
    trainer.fit(progress=False)
    with torch.no_grad():
        x = sample(trainer.model, shape=data.sample_shape, n=512, seed=0, sampler="heun", steps=16).x
    noise = Batch(x=torch.randn(512, *data.sample_shape) * float(data.get_batch(torch.arange(512)).x.std()))
    # 600 steps: W2 0.17-0.26 against noise's 0.34-0.38 over 6 training seeds (ratio 0.44-0.74), NLL 2.2-3.7
    # against 15-17; the NLL is the sharp check, W2 only that the ring's spread is right
    assert sliced_w2(Batch(x=x), data) < 0.8 * sliced_w2(noise, data)
    assert true_nll(Batch(x=x), data) < true_nll(noise, data) - 1.0


def _batch(x):
    from polydiff.diffusion.state import Batch

    return Batch(x=x)


def test_likelihood_differentiates_through_both_passes():
    from polydiff import log_likelihood

    d = Denoiser(Probe(), Parameterization(sigma_data=SD), self_condition=True)

    def two_pass(x, sigma):  # what the ODE must integrate: D(x, x_self=D(x)), not detached
        return d(x, sigma, x_self=d(x, sigma))

    x0 = torch.randn(3, 2)
    got = log_likelihood(d, x0, steps=4).logp
    want = log_likelihood(two_pass, x0, steps=4).logp
    detached = log_likelihood(lambda x, s: d(x, s, x_self=d(x, s).detach()), x0, steps=4).logp
    assert torch.allclose(got, want, atol=1e-5)
    assert (got - detached).abs().max() > 1e-3  # the check can tell the difference


def test_an_estimate_far_outside_the_data_is_clipped():
    probe = Probe()
    d = Denoiser(probe, Parameterization(sigma_data=SD), self_condition=True)
    d(torch.zeros(2, 3), 80.0, x_self=torch.full((2, 3), 1e12))
    assert float(probe.seen[-1].max()) == 5.0  # SELF_COND_CLIP sigma_data: a feedback loop cannot blow up


def test_cli_train_sample_evaluate_a_self_conditioned_run(tmp_path, capsys):
    import json

    from polydiff.app.cli import main

    out = tmp_path / "sc"
    tiny = ["train.steps=30", "train.batch_size=64", "data.n=256", "model.width=32", "model.depth=1"]
    assert main(["train", "points", "model.self_condition=true", *tiny, "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["model"]["self_condition"] is True
    assert main(["sample", str(out), "--steps", "5", "--n", "64", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["sliced_w2"] > 0 and -1.0 < res["nll_nats_per_dim"] < 6.0  # the two-pass likelihood is finite
    assert main(["train", "image", "model.self_condition=true", "--out", str(tmp_path / "img"), "--quiet"]) == 2
    assert "backbones that do: e3nn, e3nn_conformer, mlp" in capsys.readouterr().err
