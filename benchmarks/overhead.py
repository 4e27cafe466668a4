"""Framework overhead: our training step and sampler vs hand-written minimal PyTorch doing the same maths.

Training: ``Trainer.fit`` (seeded per-step draws, metrics accumulation and logging, EMA, clipping,
warmup) against a bare loop with the same model, AdamW, EMA, clipping, warmup, lognormal noise
levels and EDM-weighted loss. Sampling: ``polydiff.diffusion.samplers.euler`` / ``heun`` against a bare
Euler / Heun loop over the same grid and denoiser. Each timing is the median of ``--repeats`` runs
after a warm-up run, ours and minimal interleaved so machine drift hits both alike.

Per-call sampler overhead: every built-in sampler with a zero model (``D = 0``) at NFE 50 on a few
batch shapes, in CPU microseconds per denoiser call (time.process_time), next to a hand-written loop
with the structure of k-diffusion's ``sample_euler`` (sigma tensors indexed per step, ``append_dims``,
``sigma * s_in``): k-diffusion is not installed here, so that loop stands in for it. Its
``sample_euler_ancestral`` (``torch.randn_like`` from the global generator) is the peer row for the
stochastic samplers, whose noise is per-sample reproducible (``NoiseSource``).

    python benchmarks/overhead.py                  # table + benchmarks/results/overhead.json
    python benchmarks/overhead.py --quick          # fewer steps and repeats
    python benchmarks/overhead.py --samplers-only  # only the per-call sampler overhead
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from polydiff import EDM, Denoiser, NoiseLevels, Parameterization, Weighting, sigma_grid
from polydiff.diffusion.data import DiffusionDataset
from polydiff.diffusion.noise import NoiseSource, seeds_for
from polydiff.diffusion.samplers import BUILTIN_SAMPLERS, euler, heun
from polydiff.modalities.points import load_mixture, load_ring
from polydiff.nn.layers import build_mlp
from polydiff.training.trainer import TrainConfig, Trainer

P_MEAN, P_STD, SIGMA_DATA = -1.2, 1.2, 0.5
MODELS: dict[str, tuple[Callable[[], DiffusionDataset], dict[str, int], int]] = {  # loader, MLP options, batch
    "points-mlp": (lambda: load_ring(n=8192), dict(width=128, depth=3, emb_dim=64), 512),
    "bigger-mlp": (lambda: load_mixture(n=8192, dim=16), dict(width=256, depth=4, emb_dim=128), 256),
}


def _model(ds: DiffusionDataset, opts: dict[str, int]) -> Denoiser:
    torch.manual_seed(0)
    net = build_mlp(ds, width=opts["width"], depth=opts["depth"], emb_dim=opts["emb_dim"])
    return Denoiser(net, Parameterization(kind="edm", sigma_data=SIGMA_DATA))


def _config(steps: int, batch: int) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=batch, lr=1e-3, warmup_steps=20, ema_decay=0.999, grad_clip=1.0,
                       log_every=50, checkpoint_every=10**9, device="cpu", label_dropout=0.0)


def ours_train(ds: DiffusionDataset, opts: dict[str, int], steps: int, batch: int) -> float:
    trainer = Trainer(denoiser=_model(ds, opts), dataset=ds, schedule=EDM(), noise_levels=NoiseLevels(kind="lognormal"),
                      weighting=Weighting(kind="edm"), config=_config(steps, batch))
    t = time.perf_counter()
    trainer.fit(progress=False)
    return time.perf_counter() - t


def minimal_train(ds: DiffusionDataset, opts: dict[str, int], steps: int, batch: int) -> float:
    """The same maths, written the short way (global RNG, no logging)."""
    cfg = _config(steps, batch)
    model = _model(ds, opts)
    params: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.adam_eps, weight_decay=cfg.weight_decay)
    ema = [p.detach().clone() for p in params]
    x_all = ds.get_batch(torch.arange(len(ds))).x
    n, perm, pos = len(ds), torch.randperm(len(ds)), 0
    t = time.perf_counter()
    for step in range(steps):
        if pos + batch > n:
            perm, pos = torch.randperm(n), 0
        x0 = x_all[perm[pos:pos + batch]]
        pos += batch
        sigma = torch.exp(P_MEAN + P_STD * torch.randn(batch, dtype=torch.float64)).float()
        eps = torch.randn_like(x0)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps)
        denoised = model(x0 + sigma[:, None] * eps, sigma)
        weight = (sigma**2 + SIGMA_DATA**2) / (sigma * SIGMA_DATA) ** 2  # EDM lambda
        loss = (weight * (denoised - x0).pow(2).mean(1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, params, 1 - cfg.ema_decay)
    float(loss.detach())  # like ours, one host sync at the end
    return time.perf_counter() - t


def minimal_euler(den: Callable[..., torch.Tensor], x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    for s, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        d = (x - den(x, torch.full((x.shape[0],), s))) / s
        x = x + d * (s_next - s)
    return x


def minimal_heun(den: Callable[..., torch.Tensor], x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    for s, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        d = (x - den(x, torch.full((x.shape[0],), s))) / s
        x_next = x + d * (s_next - s)
        if s_next > 0:
            d2 = (x_next - den(x_next, torch.full((x.shape[0],), s_next))) / s_next
            x_next = x + (d + d2) * (0.5 * (s_next - s))
        x = x_next
    return x


def kdiffusion_style_euler(den: Callable[..., torch.Tensor], x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """k-diffusion's ``sample_euler`` loop without churn, re-typed: per-step sigma tensor maths."""
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = den(x, sigmas[i] * s_in)
        d = (x - denoised) / sigmas[i].reshape(-1, *([1] * (x.ndim - 1)))  # to_d with append_dims
        dt = sigmas[i + 1] - sigmas[i]
        x = x + d * dt
    return x


def kdiffusion_style_ancestral(den: Callable[..., torch.Tensor], x: torch.Tensor,
                               sigmas: torch.Tensor) -> torch.Tensor:
    """k-diffusion's ``sample_euler_ancestral`` (eta 1) re-typed: ``get_ancestral_step`` on sigma tensors,
    then ``torch.randn_like`` from the global generator (not reproducible per sample): the peer's cost of
    a stochastic step, noise included."""
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = den(x, sigmas[i] * s_in)
        s, s_next = sigmas[i], sigmas[i + 1]
        sigma_up = min(s_next, (s_next**2 * (s**2 - s_next**2) / s**2) ** 0.5)
        sigma_down = (s_next**2 - sigma_up**2) ** 0.5
        d = (x - denoised) / s.reshape(-1, *([1] * (x.ndim - 1)))
        x = x + d * (sigma_down - s)
        if s_next > 0:
            x = x + torch.randn_like(x) * sigma_up
    return x


OVERHEAD_SHAPES = ((16, 16), (4096, 2), (65536, 2))


def _run_sampler(spec: Any, den: Callable[..., torch.Tensor], x: torch.Tensor, sigmas: torch.Tensor,
                 seeds: list[int]) -> torch.Tensor:
    """One call as ``sample`` makes it: a fresh noise source per call (stochastic samplers draw from it)."""
    return spec.fn(den, x, sigmas, noise=NoiseSource(seeds) if spec.stochastic else None, **spec.options)


def sampler_overhead(nfe: int = 50, repeats: int = 5) -> list[dict[str, Any]]:
    """CPU microseconds per denoiser call with a zero model, median of ``repeats`` (noise source included)."""
    zero = lambda x, sigma, **_: torch.zeros_like(x)  # noqa: E731
    rows = []
    for shape in OVERHEAD_SHAPES:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * 80
        seeds = seeds_for(shape[0], 0)
        cases: list[tuple[str, Callable[[], Any], int]] = []
        for spec in BUILTIN_SAMPLERS:
            if spec.name == "restart":  # its NFE depends on sigma_restart; it runs its solver's steps
                continue
            steps = spec.steps_for_nfe(nfe)
            sig = sigma_grid(EDM(), steps).to(torch.float32)
            cases.append((spec.name, partial(_run_sampler, spec, zero, x, sig, seeds), spec.nfe(steps)))
        sig = sigma_grid(EDM(), nfe).to(torch.float32)
        cases.append(("k-diffusion-style euler", partial(kdiffusion_style_euler, zero, x, sig), nfe))
        cases.append(("k-diffusion-style ancestral", partial(kdiffusion_style_ancestral, zero, x, sig), nfe))
        for name, fn, calls in cases:
            with torch.no_grad():
                fn()
                times = []
                for _ in range(repeats):
                    t = time.process_time()
                    fn()
                    times.append(time.process_time() - t)
            rows.append({"shape": list(shape), "sampler": name, "us_per_call": 1e6 * statistics.median(times) / calls})
    return rows


def _draw_all(make: Callable[[], Callable[[torch.Tensor], torch.Tensor]], like: torch.Tensor, draws: int) -> None:
    draw = make()
    for _ in range(draws):
        draw(like)


def noise_cost(draws: int = 51, repeats: int = 5) -> list[dict[str, Any]]:
    """CPU microseconds per draw of ``NoiseSource`` (a fresh source per call, ``draws`` draws, as a 50-step
    stochastic sampler makes them) and of ``torch.randn_like`` (one global generator), per shape."""
    rows = []
    for shape in OVERHEAD_SHAPES:
        like = torch.zeros(*shape)
        makers: dict[str, Callable[[], Callable[[torch.Tensor], torch.Tensor]]] = {
            "NoiseSource": partial(NoiseSource, seeds_for(shape[0], 0)), "torch.randn_like": lambda: torch.randn_like}
        for name, make in makers.items():
            _draw_all(make, like, draws)
            times = []
            for _ in range(repeats):
                t = time.process_time()
                _draw_all(make, like, draws)
                times.append(time.process_time() - t)
            us = 1e6 * statistics.median(times) / draws
            rows.append({"shape": list(shape), "noise": name, "us_per_draw": us,
                         "ns_per_value": 1e3 * us / like.numel()})
    return rows


def _timed(fn: Callable[..., Any], *args: Any) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def _median_pair(ours: Callable[[], float], minimal: Callable[[], float],
                 repeats: int) -> tuple[float, float, float]:
    """Median times of both and the median of per-pair ratios (robust to load from other processes)."""
    ours(), minimal()  # warm-up (allocator, autograd graphs, lazy imports)
    a, b = [], []
    for i in range(repeats):  # alternate which goes first, so neither always runs on a warmer cache
        if i % 2:
            b.append(minimal())
            a.append(ours())
        else:
            a.append(ours())
            b.append(minimal())
    return statistics.median(a), statistics.median(b), statistics.median(x / y for x, y in zip(a, b, strict=True))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=100, help="training steps per timing")
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--sample-steps", type=int, default=32)
    ap.add_argument("--n", type=int, default=1024, help="samples per sampler timing")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier timings on a shared machine)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--samplers-only", action="store_true", help="only the per-call sampler overhead table")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "overhead.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.n = 50, 3, 256
    torch.set_num_threads(args.threads)
    cpu_start = time.process_time()
    per_call = sampler_overhead(repeats=args.repeats)
    names = list(dict.fromkeys(r["sampler"] for r in per_call))
    print("per-call overhead (CPU us per denoiser call, zero model, NFE 50)")
    print(f"{'sampler':<24}" + "".join(f" {list(sh)!s:>12}" for sh in OVERHEAD_SHAPES))
    table = {name: {tuple(r["shape"]): r["us_per_call"] for r in per_call if r["sampler"] == name} for name in names}
    for name in names:
        print(f"{name:<24}" + "".join(f" {table[name][sh]:>12.1f}" for sh in OVERHEAD_SHAPES))
    for ref in ("k-diffusion-style euler", "euler"):  # the two bars of issue 22
        print(f"ratio to {ref}")
        for name in names:
            print(f"  {name:<22}" + "".join(f" {table[name][sh] / table[ref][sh]:>12.2f}" for sh in OVERHEAD_SHAPES))
    noise = noise_cost(repeats=max(3, args.repeats // 2))
    print("noise per draw (CPU us; ns per value)")
    for r in noise:
        print(f"  {r['noise']:<18} {list(r['shape'])!s:>12} {r['us_per_draw']:>10.1f} {r['ns_per_value']:>8.2f}")
    rows: list[dict[str, Any]] = []
    for name, (load, opts, batch) in ([] if args.samplers_only else MODELS.items()):
        ds = load()
        ours, minimal, ratio = _median_pair(partial(ours_train, ds, opts, args.steps, batch),
                                            partial(minimal_train, ds, opts, args.steps, batch), args.repeats)
        rows.append({"what": f"train step, {name}, batch {batch}", "ours_ms": 1e3 * ours / args.steps,
                     "minimal_ms": 1e3 * minimal / args.steps, "ratio": ratio})
        den = _model(ds, opts).eval()
        sigmas = sigma_grid(EDM(), args.sample_steps, "karras")
        x = torch.randn(args.n, *ds.sample_shape, generator=torch.Generator().manual_seed(0)) * float(sigmas[0])
        for sampler, bare in (("euler", minimal_euler), ("heun", minimal_heun)):
            with torch.no_grad():
                fn = {"euler": euler, "heun": heun}[sampler]
                torch.testing.assert_close(fn(den, x, sigmas), bare(den, x, sigmas))  # same maths
                ours, minimal, ratio = _median_pair(partial(_timed, fn, den, x, sigmas),
                                                    partial(_timed, bare, den, x, sigmas), args.repeats)
            rows.append({"what": f"{sampler} sampler, {name}, n {args.n}, {args.sample_steps} steps",
                         "ours_ms": 1e3 * ours, "minimal_ms": 1e3 * minimal, "ratio": ratio})
    print(f"{'what':<48} {'ours ms':>10} {'minimal ms':>11} {'ratio':>7}")
    for r in rows:
        print(f"{r['what']:<48} {r['ours_ms']:>10.3f} {r['minimal_ms']:>11.3f} {r['ratio']:>7.3f}")
    result = {"rows": rows, "per_call_overhead": per_call, "noise_per_draw": noise, "steps": args.steps,
              "repeats": args.repeats,
              "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.machine(), "python": platform.python_version(),
              "worst_ratio": max(r["ratio"] for r in rows) if rows else math.nan,
              "cpu_seconds": time.process_time() - cpu_start}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} ({result['cpu_seconds']:.1f} CPU s)")
    return result


if __name__ == "__main__":
    main()
