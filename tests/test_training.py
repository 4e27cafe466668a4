"""Training: the loss against a hand computation, masks, label dropout, EMA, determinism, config errors."""

import json
import math

import pytest
import torch
from torch import nn

from polydiff import EDM, Batch, Denoiser, NoiseLevels, Parameterization, Weighting
from polydiff.app.config import ConfigError, build_dataclass
from polydiff.diffusion.state import Field, StateSpec
from polydiff.modalities.points import load_ring
from polydiff.nn.layers import build_mlp
from polydiff.training.objective import diffusion_loss, draw_step, prepare_batch
from polydiff.training.trainer import TrainConfig, Trainer
from train_script import make_trainer, params


class Linear(nn.Module):
    """F(x_in, c_noise) = a * x_in + c_noise: simple enough to compute the loss by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.3))
        self.seen: dict = {}

    def forward(self, x, c_noise, **cond):
        self.seen = cond
        return self.a * x + c_noise.reshape(-1, *[1] * (x.ndim - 1))


def test_loss_equals_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    sigma, sd = torch.tensor([0.1, 0.5, 2.0, 10.0]), 0.5
    loss = diffusion_loss(Denoiser(Linear(), Parameterization(kind="edm", sigma_data=sd)), Batch(x=x0),
                          sigma=sigma, eps=eps, weighting=Weighting(kind="edm"))
    expected = []
    for i in range(4):
        s = float(sigma[i])
        x = x0[i] + s * eps[i]
        c_skip, c_out, c_in = sd**2 / (s**2 + sd**2), s * sd / math.sqrt(s**2 + sd**2), 1 / math.sqrt(s**2 + sd**2)
        d = c_skip * x + c_out * (0.3 * c_in * x + math.log(s) / 4)  # EDM Eq. 7
        lam = (s**2 + sd**2) / (s * sd) ** 2  # EDM Eq. 8
        expected.append(lam * float(((d - x0[i]) ** 2).mean()))
    torch.testing.assert_close(loss, torch.tensor(expected), rtol=1e-5, atol=1e-6)


class Perturbed(nn.Module):
    """A denoiser whose output is moved by ``delta`` where ``where`` is 1."""

    def __init__(self, inner, where, delta):
        super().__init__()
        self.inner, self.where, self.delta = inner, where, delta
        self.parameterization = inner.parameterization

    def forward(self, x, sigma, **cond):
        return self.inner(x, sigma, **cond) + self.where * self.delta


def test_padding_and_given_entries_do_not_count():
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    padding = torch.tensor([[1.0] * 6, [1.0] * 4 + [0.0] * 2, [1.0] * 3 + [0.0] * 3])
    observed = torch.tensor([[1, 1, 0, 1, 1, 1], [1, 0, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], dtype=torch.float32)
    target = torch.tensor([[1, 0, 0, 1, 0, 0], [0, 0, 1, 1, 0, 0], [1, 0, 1, 0, 0, 0]], dtype=torch.float32)
    batch = Batch(x=x0 * padding, padding=padding, observed=observed)
    den = Denoiser(Linear(), Parameterization())
    kw = dict(sigma=torch.tensor([0.3, 1.0, 3.0]), eps=eps * padding, weighting=Weighting(kind="uniform"))
    base = diffusion_loss(den, batch, target=target, **kw)
    # the model is given exactly the observed, non-target entries
    given = observed * (1 - target)
    assert torch.equal(den.backbone.seen["cond_mask"], given)
    assert torch.equal(den.backbone.seen["x_cond"], x0 * padding * given)
    ignored = 1 - target  # padding, unobserved and given entries
    same = diffusion_loss(Perturbed(den, ignored, 100.0), batch, target=target, **kw)
    torch.testing.assert_close(same, base)
    moved = diffusion_loss(Perturbed(den, target, 1.0), batch, target=target, **kw)
    assert bool((moved - base).abs().min() > 1e-3)
    # unconditional training on data with missing values: only observed real entries count
    plain = diffusion_loss(den, batch, **kw)
    torch.testing.assert_close(diffusion_loss(Perturbed(den, 1 - observed * padding, 100.0), batch, **kw), plain)
    assert bool((diffusion_loss(Perturbed(den, observed * padding, 1.0), batch, **kw) - plain).abs().min() > 1e-3)


def test_label_dropout_rate():
    ring = load_ring(n=20000)
    batch = ring.get_batch(torch.arange(20000))
    for rate in (0.0, 0.3):
        g = torch.Generator().manual_seed(3)
        draws = draw_step(g, batch_size=20000, sample_shape=(2,), schedule=EDM(), noise_levels=NoiseLevels(),
                          label_dropout=rate)
        out, _, _ = prepare_batch(batch, draws, spec_project=ring.spec.project, mask_fn=None, generator=g)
        dropped = out.cond["label"] == -1
        assert abs(float(dropped.float().mean()) - rate) < 0.015
        kept = ~dropped
        assert torch.equal(out.cond["label"][kept], batch.cond["label"][kept])


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_is_an_exponential_average_of_the_weights(warmup):
    trainer = make_trainer("labels", ema_decay=0.75, steps=3, ema_warmup=warmup)
    theta = [[p.detach().clone() for p in trainer.params]]
    for step in range(3):
        trainer.train_step(step)
        theta.append([p.detach().clone() for p in trainer.params])
    # with warmup, step s uses d = min(0.75, (1 + s) / (10 + s)): 0.1, 2/11, 0.25
    decays = [min(0.75, (1 + s) / (10 + s)) if warmup else 0.75 for s in range(3)]
    for i, ema in enumerate(trainer.ema):
        e = theta[0][i]
        for t in range(1, 4):
            e = decays[t - 1] * e + (1 - decays[t - 1]) * theta[t][i]
        torch.testing.assert_close(ema, e)
    assert not torch.allclose(trainer.ema[0], trainer.params[0])


def test_warmup_ramps_the_learning_rate():
    trainer = make_trainer("labels", lr=1e-2, warmup_steps=4)
    assert [trainer.lr_at(s) for s in range(6)] == pytest.approx([2.5e-3, 5e-3, 7.5e-3, 1e-2, 1e-2, 1e-2])


def test_inverse_sqrt_decay_follows_edm2_after_its_reference_step():
    trainer = make_trainer("labels", lr=1e-2, warmup_steps=2, lr_decay_steps=4)
    lrs = [trainer.lr_at(s) for s in (0, 1, 3, 7, 15, 99)]
    assert lrs == pytest.approx([5e-3, 1e-2, 1e-2, 1e-2 / 2 ** 0.5, 1e-2 / 2, 1e-2 / 5])
    with pytest.raises(ValueError, match="lr_decay_steps must be >= 0"):
        TrainConfig(lr_decay_steps=-1)


def test_data_order_is_an_epoch_permutation_and_runs_are_reproducible():
    trainer = make_trainer("labels", batch_size=16)
    n = len(trainer.dataset)  # 300: epochs straddle batches
    order = torch.cat([trainer.global_indices(s) for s in range(2 * n // 16 + 1)])
    assert torch.equal(order[:n].sort().values, torch.arange(n))
    assert torch.equal(order[n:2 * n].sort().values, torch.arange(n))
    assert not torch.equal(order[:n], order[n:2 * n])
    a, b, c = make_trainer("labels"), make_trainer("labels"), make_trainer("labels", seed=8)
    for t in (a, b, c):
        t.fit(progress=False)
    pa, pb, pc = params(a), params(b), params(c)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert not all(torch.equal(pa[k], pc[k]) for k in pa)


def test_loss_decreases_on_the_ring(tmp_path):
    ring = load_ring(n=2048)
    torch.manual_seed(0)
    den = Denoiser(build_mlp(ring, width=64, depth=2, emb_dim=32), Parameterization(sigma_data=1.0))
    cfg = TrainConfig(steps=300, batch_size=128, lr=3e-3, warmup_steps=20, log_every=100, checkpoint_every=1000,
                      device="cpu", ema_decay=0.95)
    trainer = Trainer(denoiser=den, dataset=ring, schedule=EDM(), noise_levels=NoiseLevels(kind="lognormal"),
                      weighting=Weighting(kind="edm"), config=cfg, run_dir=tmp_path)

    def held_out_loss() -> float:  # the same draws before and after: steps no run trains on
        with torch.no_grad():
            return float(torch.cat([trainer.step_loss(10_000 + s)[0] for s in range(8)]).mean())

    before = held_out_loss()
    trainer.fit(progress=False)
    after = held_out_loss()
    assert after < 0.75 * before, (before, after)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [100, 200, 300]
    assert set(rows[0]) >= {"step", "loss", "grad_norm", "lr", "seconds", "loss_by_sigma"}
    assert rows[-1]["loss"] < rows[0]["loss"] and rows[0]["grad_norm"] > 0


def test_bf16_autocast_trains_on_cpu_with_a_progress_bar(capsys):
    trainer = make_trainer("labels", precision="bf16", steps=4)
    summary = trainer.fit(progress=True)
    assert math.isfinite(summary["loss"]) and summary["step"] == 4
    assert "4/4" in capsys.readouterr().err


def test_bad_config_values_give_clear_errors():
    with pytest.raises(ValueError, match="fp16.*needs a CUDA device.*bf16"):
        make_trainer("labels", precision="fp16")
    with pytest.raises(ValueError, match="ema_decay must be in"):
        TrainConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="choose one of: fp32, bf16, fp16"):
        build_dataclass(TrainConfig, {"precision": "fp8"}, "train")
    cfg = build_dataclass(TrainConfig, {"betas": [0.5, 0.9], "steps": "20"}, "train")
    assert cfg.betas == (0.5, 0.9) and cfg.steps == 20


def test_conditional_training_with_com_free_padded_states():
    spec = StateSpec((Field("pos", (None, 3), noise="com_free"),))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, 3, generator=g)
    lengths = torch.randint(2, 6, (64,), generator=g)
    pad = spec.padding_mask(lengths, 5)
    from polydiff import ArrayDataset

    ds = ArrayDataset(spec, spec.project(x, pad), padding=pad)
    torch.manual_seed(0)
    den = Denoiser(build_mlp(ds, width=16, depth=1, emb_dim=8, conditional=True), Parameterization())
    cfg = TrainConfig(steps=3, batch_size=8, device="cpu", conditional=True, log_every=1)
    trainer = Trainer(denoiser=den, dataset=ds, schedule=EDM(), noise_levels=NoiseLevels(), weighting=Weighting(),
                      config=cfg)
    loss, _ = trainer.step_loss(0)
    assert loss.shape == (8,) and bool(torch.isfinite(loss).all())
    assert math.isfinite(trainer.fit(progress=False)["loss"])


class Translated(nn.Module):
    """The wrapped backbone, with every atom of field ``pos`` moved by the same vector."""

    def __init__(self, inner: nn.Module, spec: StateSpec, shift: torch.Tensor) -> None:
        super().__init__()
        self.inner, self.spec, self.shift = inner, spec, shift

    def forward(self, x, c_noise, **cond):
        f = self.spec.unpack(self.inner(x, c_noise, **cond))
        return self.spec.pack({**f, "pos": f["pos"] + self.shift})


def test_the_loss_ignores_what_sampling_projects_away():
    spec = StateSpec((Field("pos", (None, 3), noise="com_free"), Field("h", (None, 2))))
    g = torch.Generator().manual_seed(0)
    pad = spec.padding_mask(torch.tensor([2, 5, 4, 3, 5, 2, 4, 3]), 5)
    from polydiff import ArrayDataset

    ds = ArrayDataset(spec, spec.project(torch.randn(8, *pad.shape[1:], generator=g), pad), padding=pad)
    torch.manual_seed(0)
    net = build_mlp(ds, width=16, depth=1, emb_dim=8)
    moved = Translated(net, spec, torch.tensor([0.7, -2.0, 5.0]))
    batch, sigma = ds.get_batch(torch.arange(8)), torch.linspace(0.05, 20.0, 8)
    eps = spec.project(torch.randn(batch.x.shape, generator=g), pad)

    def loss(backbone, project):
        return diffusion_loss(Denoiser(backbone, Parameterization()), batch, sigma=sigma, eps=eps,
                              weighting=Weighting(), project=project)

    torch.testing.assert_close(loss(moved, spec.project), loss(net, spec.project), rtol=1e-5, atol=1e-6)
    assert (loss(moved, None) > loss(net, None) + 1e-3).all()  # without the projection the shift would count
    # the trainer passes its state's projection
    cfg = TrainConfig(steps=1, batch_size=8, device="cpu")
    losses = [Trainer(denoiser=Denoiser(b, Parameterization()), dataset=ds, schedule=EDM(), noise_levels=NoiseLevels(),
                      weighting=Weighting(), config=cfg).step_loss(0)[0] for b in (net, moved)]
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)


def test_max_minutes_stops_early_with_a_checkpoint(tmp_path):
    trainer = make_trainer("labels", steps=100_000, max_minutes=0.5 / 60, log_every=10_000, checkpoint_every=10_000,
                           run_dir=tmp_path)
    summary = trainer.fit(progress=False)
    assert 0 < summary["step"] < 100_000 and "max_minutes" in summary["stopped"]
    assert 0.5 <= summary["seconds"] < 5
    assert summary["checkpoint"] is not None  # the budget's last step is saved, whatever checkpoint_every says
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == summary["step"]
    with pytest.raises(ValueError, match="max_minutes must be > 0"):
        TrainConfig(max_minutes=0)


def test_threads_option_sets_torch_threads():
    before = torch.get_num_threads()
    try:
        make_trainer("labels", threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        TrainConfig(threads=0)
