"""Per-field sigma_data: each field of a structured state preconditioned with its own spread."""

import pytest
import torch

from polydiff.app.config import ConfigError
from polydiff.app.runs import build_denoiser, resolve_config, resolved_sigma_data
from polydiff.diffusion.data import ArrayDataset
from polydiff.diffusion.losses import Weighting, denoising_loss, noisy
from polydiff.diffusion.parameterization import Denoiser, Parameterization, field_sigma_data_of
from polydiff.diffusion.state import Field, StateSpec

SPEC = StateSpec((Field("pos", (None, 3), noise="com_free"), Field("types", (None, 2))))
SD = {"pos": 1.5, "types": 0.08}


def _batch(n=4096, atoms=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(n, atoms, 3, generator=g, dtype=torch.float64) * SD["pos"]
    types = torch.randn(n, atoms, 2, generator=g, dtype=torch.float64) * SD["types"]
    return SPEC.pack({"pos": pos, "types": types})


@pytest.mark.parametrize("kind", ["edm", "eps", "x0", "v", "flow"])
def test_each_field_gets_the_coefficients_of_its_own_sigma_data(kind):
    x = _batch(3)
    sigma = torch.tensor([0.05, 0.5, 5.0], dtype=torch.float64)
    c = Parameterization(kind=kind, sigma_data=SD, spec=SPEC).coefficients(sigma, x)
    for name, sd in SD.items():
        one = Parameterization(kind=kind, sigma_data=sd).coefficients(sigma)
        for got, want in ((c.c_skip, one.c_skip), (c.c_out, one.c_out), (c.c_in, one.c_in)):
            part = SPEC.unpack(got)[name]
            torch.testing.assert_close(part, want[:, None, None].expand_as(part))
        torch.testing.assert_close(c.c_noise, one.c_noise)


def test_per_field_preconditioning_gives_unit_variance_inputs_and_targets_in_every_field():
    # EDM's c_in and c_out are chosen so that network input and target have unit variance; with one
    # shared sigma_data a field of small spread gets neither (here the types field)
    x0 = _batch()
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for s in (0.02, 0.3, 3.0):
        sigma = torch.full((x0.shape[0],), s, dtype=torch.float64)
        x = noisy(x0, sigma, eps)
        per = Parameterization(sigma_data=SD, spec=SPEC)
        shared = Parameterization(sigma_data=0.7)
        for name in SD:
            c = per.coefficients(sigma, x)
            std_in = float(SPEC.unpack(c.c_in * x)[name].std())
            std_target = float(SPEC.unpack(per.target(x, x0, sigma))[name].std())
            assert abs(std_in - 1) < 0.05 and abs(std_target - 1) < 0.05, (name, s, std_in, std_target)
        c = shared.coefficients(sigma)
        off_in = float(SPEC.unpack(c.c_in[:, None] * x)["types"].std())
        off_target = float(SPEC.unpack(shared.target(x, x0, sigma))["types"].std())
        assert max(abs(off_in - 1), abs(off_target - 1)) > 0.2, "one shared sigma_data does not normalise it"


def test_edm_weighting_per_field_is_the_per_field_loss_on_the_target():
    x0 = _batch(8)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    sigma = torch.exp(torch.randn(8, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    x = noisy(x0, sigma, eps)
    p = Parameterization(sigma_data=SD, spec=SPEC)
    denoised = x0 + 0.05 * torch.randn_like(x0)
    c = p.coefficients(sigma, x)
    f_hat = (denoised - c.c_skip * x) / c.c_out
    expected = ((f_hat - p.target(x, x0, sigma)) ** 2).mean(1)  # EDM weighting = F-space MSE, per entry
    for kind in ("edm", "uniform"):
        weight = Weighting(kind=kind)(sigma, p, x0)
        assert weight.shape == x0.shape
        got = denoising_loss(denoised, x0, sigma, weight)
        torch.testing.assert_close(got, expected.float(), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="pass x"):
        Weighting(kind="edm")(sigma, p)


def test_denoiser_with_per_field_sigma_data_is_exact_for_an_oracle():
    x0 = _batch(4)
    sigma = torch.tensor([0.01, 0.2, 2.0, 20.0], dtype=torch.float64)
    x = noisy(x0, sigma, torch.randn_like(x0))
    p = Parameterization(sigma_data=SD, spec=SPEC)
    target = p.target(x, x0, sigma)

    class Oracle(torch.nn.Module):
        def forward(self, x_in, c_noise, **cond):
            assert c_noise.shape == (4,), "c_noise stays one number per sample"
            return target

    torch.testing.assert_close(Denoiser(Oracle(), p)(x, sigma), x0)


def test_bad_per_field_sigma_data_is_refused_clearly():
    with pytest.raises(ValueError, match="needs the state's spec"):
        Parameterization(sigma_data=SD)
    with pytest.raises(ValueError, match="must be the state's fields"):
        Parameterization(sigma_data={"pos": 1.0}, spec=SPEC)
    with pytest.raises(ValueError, match="must be > 0"):
        Parameterization(sigma_data={"pos": 1.0, "types": 0.0}, spec=SPEC)
    with pytest.raises(ValueError, match="pass x"):
        Parameterization(sigma_data=SD, spec=SPEC).coefficients(torch.ones(2))


def test_config_per_field_is_estimated_from_the_data_and_checked():
    x = _batch(512).float()
    padding = SPEC.padding_mask(torch.full((512,), 5), 5)
    ds = ArrayDataset(SPEC, x, padding=padding)
    est = field_sigma_data_of(SPEC, x, padding)
    assert abs(est["pos"] - SD["pos"]) < 0.1 and abs(est["types"] - SD["types"]) < 0.01
    const = SPEC.pack({"pos": SPEC.unpack(x)["pos"], "types": torch.zeros(512, 5, 2)})
    pooled = field_sigma_data_of(SPEC, const, padding)["types"]  # nothing to learn: the state's value, not 0
    assert pooled == pytest.approx(float(const[padding.bool()].std()))

    def config(sd):
        return resolve_config({"modality": "points", "model": {"sigma_data": sd}})

    got = resolved_sigma_data(config("per_field"), ds)
    assert got == pytest.approx(est, rel=1e-4)
    assert resolved_sigma_data(config({"pos": 2, "types": 0.1}), ds) == {"pos": 2.0, "types": 0.1}
    assert resolved_sigma_data(config(0.5), ds) == 0.5
    with pytest.raises(ConfigError, match="one value per field"):
        resolved_sigma_data(config({"pos": 2.0}), ds)
    with pytest.raises(ConfigError, match="per_field"):
        config("per-field")


def test_a_points_run_trains_with_per_field_sigma_data(tmp_path):
    from polydiff.app.runs import Run, build_schedule, load_data
    from polydiff.training.trainer import Trainer

    raw = {"modality": "points", "model": {"sigma_data": "per_field"},
           "train": {"steps": 3, "batch_size": 8, "device": "cpu", "log_every": 1, "checkpoint_every": 100}}
    run = Run.create(resolve_config(raw), tmp_path / "run")
    train_ds, _ = load_data(run.config)
    run.fix_sigma_data(train_ds)
    recorded = run.config.model.sigma_data
    assert isinstance(recorded, dict) and set(recorded) == set(train_ds.spec.names)
    assert Run.open(run.path).config.model.sigma_data == recorded, "the estimate is recorded in config.json"
    denoiser = build_denoiser(run.config, train_ds)
    assert denoiser.parameterization.per_field
    trainer = Trainer(denoiser=denoiser, dataset=train_ds, schedule=build_schedule(run.config),
                      noise_levels=run.config.noise_levels,
                      weighting=run.config.weighting, config=run.config.train, run_dir=run.path)
    out = trainer.fit(progress=False)
    assert torch.isfinite(torch.tensor(out["loss"]))
