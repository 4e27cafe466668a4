"""The quick start in Python: train a denoiser on the 8-Gaussian ring, sample it with two samplers and
score the samples against the true distribution. `python examples/quickstart.py [--steps N]`."""

from __future__ import annotations

import argparse

import torch

import polydiff
from polydiff.evaluation.metrics import sliced_w2
from polydiff.modalities.points import load_ring, true_nll
from polydiff.nn.layers import build_mlp


def main(steps: int = 2000) -> dict[str, float]:
    data = load_ring(n=8192)
    torch.manual_seed(0)
    denoiser = polydiff.Denoiser(build_mlp(data, width=128, depth=3), polydiff.Parameterization(sigma_data=1.0))
    trainer = polydiff.Trainer(
        denoiser=denoiser, dataset=data, schedule=polydiff.EDM(),
        noise_levels=polydiff.NoiseLevels(kind="lognormal"), weighting=polydiff.Weighting(kind="edm"),
        config=polydiff.TrainConfig(steps=steps, batch_size=512, lr=2e-3, device="cpu"))
    trainer.fit(progress=True)
    held_out = load_ring(n=2000, seed=1)
    scores = {}
    with torch.no_grad():
        for sampler, n_steps in (("heun", 16), ("dpmpp_2m", 12)):
            out = polydiff.sample(denoiser.eval(), shape=data.sample_shape, n=2000, seed=0, sampler=sampler,
                                  steps=n_steps)
            batch = polydiff.Batch(x=out.x)
            scores[f"{sampler}@{out.nfe}nfe sliced_w2"] = sliced_w2(batch, held_out)
            scores[f"{sampler}@{out.nfe}nfe true_nll"] = true_nll(batch, held_out)
    for name, value in scores.items():
        print(f"{name:28s} {value:.4f}")
    return scores


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2000)
    main(parser.parse_args().steps)
