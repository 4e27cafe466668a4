"""Optimised sigma grids (polydiff.diffusion.grids): better than Karras on exact-denoiser mixtures, valid grids,
structured states, clear errors, and `polydiff sample --grid optimized` storing the grid with the run."""

import json
import math

import pytest
import torch
from safetensors import safe_open

from polydiff import sample
from polydiff.app.cli import main
from polydiff.diffusion.gmm import random_mixture, ring, sliced_wasserstein
from polydiff.diffusion.grids import optimize_grid, optimize_sigmas
from polydiff.diffusion.schedules import EDM, sigma_grid
from polydiff.diffusion.state import Field, StateSpec

MIXTURES = {"ring": ring(), "mixture16d": random_mixture()}


def _reference(mix, n: int, seed: int) -> torch.Tensor:
    """The probability-flow ODE solved with 400 Heun steps in log sigma from sample()'s noise for ``seed``."""
    lo, hi = EDM().sigma_min, EDM().sigma_max
    fine = torch.cat([torch.exp(torch.linspace(math.log(hi), math.log(lo), 400)), torch.zeros(1)])
    return sample(mix.denoise, shape=(mix.dim,), n=n, seed=seed, sampler="heun", sigmas=fine).x


@pytest.mark.parametrize("data", sorted(MIXTURES))
@pytest.mark.parametrize("sampler", ["euler", "dpmpp_2m"])
@pytest.mark.parametrize("steps", [5, 10])
def test_optimized_grid_beats_karras_on_held_out_noise(data, sampler, steps):
    mix = MIXTURES[data]
    sigmas = optimize_sigmas(mix.denoise, shape=(mix.dim,), steps=steps, sampler=sampler, calibration=128,
                             seed=1, rounds=4)
    n, seed = 2000, 11  # held out: neither the calibration noise nor its seed
    ref = _reference(mix, n, seed)
    truth = mix.sample(n, torch.Generator().manual_seed(5))[0]
    err, w2 = {}, {}
    for name, grid in (("karras", sigma_grid(EDM(), steps)), ("optimized", sigmas)):
        x = sample(mix.denoise, shape=(mix.dim,), n=n, seed=seed, sampler=sampler, sigmas=grid).x
        err[name] = float((x - ref).pow(2).mean().sqrt())
        w2[name] = sliced_wasserstein(x, truth)
    assert err["optimized"] < 0.8 * err["karras"], err
    assert w2["optimized"] < w2["karras"], w2


def test_grid_is_valid_and_deterministic():
    mix = MIXTURES["ring"]
    kw = dict(shape=(2,), steps=6, sampler="heun", calibration=64, reference_steps=64, candidates=16, rounds=2)
    found = optimize_grid(mix.denoise, **kw)
    s = found.sigmas
    assert s.shape == (7,) and s.dtype == torch.float32 and float(s[-1]) == 0.0
    assert float(s[0]) == pytest.approx(EDM().sigma_max) and bool((s[:-1] >= EDM().sigma_min * 0.999).all())
    assert bool((s[1:] < s[:-1]).all())
    assert torch.equal(s, optimize_sigmas(mix.denoise, **kw))
    assert found.objective == "rms" and found.error <= min(found.baselines.values())
    assert {"karras", "logsnr", "uniform_t", "gits"} <= set(found.baselines)
    one = optimize_sigmas(mix.denoise, shape=(2,), steps=1, sampler="euler", calibration=16, reference_steps=32)
    assert one.tolist() == [pytest.approx(EDM().sigma_max), 0.0]


def test_stochastic_sampler_uses_sliced_w2():
    mix = MIXTURES["ring"]
    found = optimize_grid(mix.denoise, shape=(2,), steps=6, sampler="ddpm", calibration=256, reference_steps=64,
                          candidates=16, rounds=2)
    assert found.objective == "sliced_w2" and found.error < found.baselines["karras"]


def test_structured_state_padding_and_com_free():
    spec = StateSpec((Field("pos", (None, 3), noise="com_free"), Field("h", (None, 2))))
    lengths = torch.tensor([5, 3, 4, 2] * 8)
    padding = spec.padding_mask(lengths, 5)

    def careless(x, sigma, **cond):
        assert "padding" in cond  # variable-length denoisers are told which entries are real
        return x / (1 + sigma[:, None] ** 2) + 0.3  # neither CoM-free nor zero on padding

    shape = tuple(padding.shape[1:])
    noise = torch.randn((32, *shape), generator=torch.Generator().manual_seed(0))
    kw = dict(shape=shape, steps=5, sampler="dpmpp_2m", spec=spec, padding=padding, reference_steps=64,
              candidates=12, rounds=2)
    found = optimize_grid(careless, calibration=noise, **kw)
    assert found.error <= found.baselines["karras"] and bool((found.sigmas[1:] < found.sigmas[:-1]).all())
    garbage = torch.where(padding.bool(), noise, torch.full_like(noise, 7.0))  # padded entries do not count
    assert torch.equal(found.sigmas, optimize_sigmas(careless, calibration=garbage, **kw))
    x = sample(careless, shape=shape, n=32, seed=0, sampler="dpmpp_2m", spec=spec, padding=padding,
               sigmas=found.sigmas).x
    assert torch.equal(x[padding == 0], torch.zeros_like(x[padding == 0]))
    pos, mask = spec.unpack(x)["pos"], spec.unpack(padding)["pos"]
    assert ((pos * mask).sum(1) / mask.sum(1)).abs().max() < 1e-5


def test_explicit_sigmas_match_the_named_grid_and_bad_inputs_fail():
    mix = MIXTURES["ring"]
    a = sample(mix.denoise, shape=(2,), n=8, seed=0, sampler="unipc", steps=5, grid="logsnr").x
    b = sample(mix.denoise, shape=(2,), n=8, seed=0, sampler="unipc", sigmas=sigma_grid(EDM(), 5, "logsnr")).x
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="grid 'optimized' is computed for a model"):
        sample(mix.denoise, shape=(2,), n=4, seed=0, grid="optimized")
    with pytest.raises(ValueError, match="ending in 0"):
        sample(mix.denoise, shape=(2,), n=4, seed=0, sigmas=torch.tensor([80.0, 1.0]))
    with pytest.raises(ValueError, match="steps >= 1"):
        optimize_sigmas(mix.denoise, shape=(2,), steps=0)
    with pytest.raises(ValueError, match=r"calibration noise must have shape \[n, 2\]"):
        optimize_sigmas(mix.denoise, shape=(2,), steps=3, calibration=torch.zeros(4, 3))
    with pytest.raises(ValueError, match="number of noise draws >= 1"):
        optimize_sigmas(mix.denoise, shape=(2,), steps=3, calibration=0)
    with pytest.raises(ValueError, match="unknown sampler"):
        optimize_sigmas(mix.denoise, shape=(2,), steps=3, sampler="eulr")


TINY = ["train.steps=40", "train.log_every=10", "train.batch_size=64", "train.checkpoint_every=20", "data.n=512",
        "model.width=32", "model.depth=1", "sample.n=200", "sample.steps=4"]


def test_cli_sample_fits_saves_and_reuses_the_grid(tmp_path, capsys):
    run = tmp_path / "ring"
    assert main(["train", "points", *TINY, "--out", str(run), "--quiet"]) == 0
    args = ["sample", str(run), "--sampler", "dpmpp_2m", "--steps", "4", "--n", "100", "--grid", "optimized",
            "--quiet"]
    assert main(args) == 0
    assert "NFE 4" in capsys.readouterr().out
    saved = run / "grids" / "dpmpp_2m-4.json"
    record = json.loads(saved.read_text())
    assert len(record["sigmas"]) == 5 and record["sigmas"][-1] == 0 and record["error"] <= record["baselines"]["karras"]
    assert record["checkpoint"] and record["run_id"]
    # reused, not refitted: an edited (valid) grid is what the next samples are drawn with
    record["sigmas"] = [80.0, 5.0, 1.0, 0.1, 0.0]
    saved.write_text(json.dumps(record))
    assert main(args) == 0
    samples = sorted((run / "samples").glob("dpmpp_2m-optimized-4steps-*.safetensors"))
    with safe_open(str(samples[-1]), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["sigmas"]) == pytest.approx(record["sigmas"]) and meta["grid"] == "optimized"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json", "--quiet"]) == 0  # denoiser baselines redraw with the same grid
    assert json.loads(capsys.readouterr().out)["n"] == 100


COMPARE = """
samplers = ["dpmpp_2m"]
nfe = [4]
sigma_grids = {grids}
n_samples = 64
likelihood = 0
[train]
steps = 20
batch_size = 64
checkpoint_every = 10
log_every = 10
[modalities.points]
data = {{ dataset = "ring", n = 512 }}
model = {{ width = 16, depth = 1 }}
"""


def test_compare_measures_the_optimized_grid_beside_karras(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(COMPARE.format(grids='["cosine"]'))
    assert main(["compare", str(grid), "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "unknown sigma grid(s) cosine in sigma_grids; valid: uniform_t, karras, logsnr, optimized" in \
        capsys.readouterr().err
    grid.write_text(COMPARE.format(grids='["karras", "optimized"]'))
    out = tmp_path / "res"
    assert main(["compare", str(grid), "--out", str(out), "--quiet"]) == 0
    evals = {p.name: json.loads(p.read_text()) for p in out.glob("cells/*/eval/*.json")}
    assert set(evals) == {"dpmpp_2m-karras-nfe4.json", "dpmpp_2m-optimized-nfe4.json"}
    assert evals["dpmpp_2m-optimized-nfe4.json"]["sampler"] == "dpmpp_2m@optimized"
    assert all(e["sliced_w2"] > 0 and e["nfe"] == 4 for e in evals.values())
    assert len(list(out.glob("cells/*/run/grids/dpmpp_2m-4.json"))) == 1  # fitted once, saved with the run
    assert "dpmpp_2m@optimized" in (out / "report.md").read_text()
