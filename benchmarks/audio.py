"""Audio benchmark: class-conditional spoken digits, inpainting time gaps and continuation, on the CPU.

Data: spoken digits 0-9 synthesised by espeak-ng (4 accents x 4 voice variants x 3 speeds x 3
pitches = 1440 clips; ``apt-get install espeak-ng``), 8 kHz, 32 mel bands x 64 frames of 16 ms; 10%
held out. Each backbone (``mel_conv1d``, ``mel_unet``) is trained class-conditionally (label
dropout 0.1, EDM) for a wall-clock budget, then:

* generation: 40 samples per digit with classifier-free guidance; accuracy of the dataset's reference
  classifier on them (chance 10%) and Fréchet distance in its features (FAD-like, NOT VGGish FAD),
  beside a Gaussian fitted to the training spectrograms and the held-out data itself;
* inpainting: gaps of 100, 200 and 300 ms (``time_gap``) in held-out clips, imputed WITHOUT the label
  (label -1) by replacement, log-spectral distance of the sample median vs linear interpolation of
  the spectrogram; and continuation of the last 250 ms vs repeating the last given frame.

A masked conditional ``mel_conv1d`` (CSDI-style, ``model.conditional``) is trained on ``time_mixed``
masks (per clip a gap or a continuation of 50-400 ms) for ``--inpaint-cpu`` CPU seconds
(``time.process_time``) once per ``--prior-fill`` mode (``none``: zeros on hidden frames;
``condition``: the plugin's prior fill, linear interpolation of the log-mel frames, as input;
``residual``: it diffuses x - fill), built by :func:`polydiff.app.runs.build_denoiser` from a run config
as ``polydiff train`` does, and scored on the same gaps and continuation, given the frames around
them as input. The Griffin-Lim round trip of real audio (Asterisk recordings and espeak clips) is the floor.

Prints a table and writes ``benchmarks/results/audio.json`` (pictures and a few WAVs beside it).
Run it under the shared lock::

    flock /tmp/polydiff-heavy.lock python benchmarks/audio.py  # about 40 minutes on 2 shared cores
    # only the conditional gap / continuation models, one per prior-fill mode, 240 CPU seconds each:
    python benchmarks/audio.py --backbones --prior-fill none residual --inpaint-cpu 240
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from polydiff import EDM, Batch, Denoiser, NoiseLevels, Parameterization, TrainConfig, Trainer, Weighting, plugins
from polydiff.app.runs import build_denoiser, resolve_config
from polydiff.diffusion.data import holdout_split
from polydiff.diffusion.imputation import impute
from polydiff.diffusion.prior_fill import MODES
from polydiff.diffusion.sampling import sample
from polydiff_audio import masks
from polydiff_audio.baselines import repeat_last_frame
from polydiff_audio.data import AudioDataset
from polydiff_audio.metrics import (
    audio_accuracy,
    audio_fd,
    gaussian_baseline,
    impute_lsd,
    impute_sc,
    linear_interpolation,
    reference_classifier,
)
from polydiff_audio.plots import plot_imputation, plot_samples, plot_trajectory, save_samples
from polydiff_audio.spectrogram import round_trip_error
from polydiff_audio.speech import load_asterisk_digits, load_espeak_digits

RESULTS = Path(__file__).parent / "results"
MODELS: dict[str, dict[str, Any]] = {
    "mel_conv1d": {"width": 64, "depth": 8, "attention_every": 4, "class_cond": True},
    "mel_unet": {"channels": 16, "channel_mult": "1,2,2", "class_cond": True},
}
# measured on the shared 2-core CPU (batch 32, one thread): mel_conv1d 0.31 s per training step, mel_unet
# 1.5 s; the U-Net gets a shorter budget and a smaller evaluation (fraction of samples / imputed clips)
EVAL_FRACTION = {"mel_conv1d": 1.0, "mel_unet": 0.4}
# the masked conditional model for gaps and continuations: no label (it must infer the digit from context)
INPAINT_MODEL: dict[str, Any] = {"width": 64, "depth": 8, "attention_every": 4, "conditional": True}
GAPS_MS = (100.0, 200.0, 300.0)


def train(name: str, ds: Any, minutes: float, seed: int, batch_size: int) -> tuple[Denoiser, dict[str, Any]]:
    """Class-conditional training (label dropout 0.1) for ``minutes`` of wall clock."""
    options = MODELS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = plugins.get_backbone(name).build(ds, **options)
    denoiser = Denoiser(net, Parameterization(kind="edm", sigma_data=0.5))
    cfg = TrainConfig(steps=10**6, batch_size=batch_size, lr=2e-3, warmup_steps=100, ema_decay=0.995, grad_clip=1.0,
                      label_dropout=0.1, device="cpu", seed=seed, log_every=50, checkpoint_every=10**9,
                      max_minutes=minutes)
    trainer = Trainer(denoiser=denoiser, dataset=ds, schedule=EDM(), noise_levels=NoiseLevels(kind="lognormal"),
                      weighting=Weighting(kind="edm"), config=cfg)
    out = trainer.fit(progress=True)
    for p, e in zip(trainer.params, trainer.ema, strict=True):  # evaluate the EMA weights
        p.data.copy_(e)
    return denoiser.eval(), {"steps": out["step"], "minutes": out["seconds"] / 60, "final_loss": out["loss"],
                             "parameters": sum(p.numel() for p in net.parameters()), "options": options}


def train_conditional(ds: Any, mode: str, cpu_seconds: float, seed: int,
                      batch_size: int) -> tuple[Denoiser, dict[str, Any]]:
    """The masked conditional ``mel_conv1d`` with ``model.prior_fill = mode``, built from a run config by
    :func:`polydiff.app.runs.build_denoiser` (which attaches the fill; a residual model's sigma_data is
    estimated from x - fill on training masks, the others keep 0.5), trained on ``time_mixed`` masks
    (gaps and continuations of 50-400 ms) for ``cpu_seconds`` of ``time.process_time`` in chunks of 25
    steps; the EMA weights are evaluated."""
    config = resolve_config({
        "modality": "audio", "data": {"dataset": "espeak_digits"},
        "model": {"backbone": "mel_conv1d", "parameterization": "edm", "prior_fill": mode, **INPAINT_MODEL,
                  **({} if mode == "residual" else {"sigma_data": 0.5})},
        "train": {"steps": 25, "batch_size": batch_size, "lr": 2e-3, "warmup_steps": 100, "ema_decay": 0.995,
                  "grad_clip": 1.0, "label_dropout": 0.0, "device": "cpu", "seed": seed, "log_every": 25,
                  "checkpoint_every": 10**9, "conditional": True, "mask_strategy": "time_mixed"}})
    start = time.process_time()
    denoiser = build_denoiser(config, ds)
    setup = time.process_time() - start
    trainer = Trainer(denoiser=denoiser, dataset=ds, schedule=EDM(), noise_levels=NoiseLevels(kind="lognormal"),
                      weighting=Weighting(kind="edm"), config=config.train)
    trainer.config = dataclasses.replace(config.train, steps=10**9, max_cpu_seconds=max(cpu_seconds - setup, 1e-3))
    loss = trainer.fit(progress=False)["loss"]
    cpu = time.process_time() - start
    denoiser = trainer.apply_ema()  # evaluate the EMA weights
    return denoiser, {"steps": trainer.step, "cpu_seconds": round(cpu, 1), "setup_cpu_seconds": round(setup, 1),
                             "prior_fill": mode, "sigma_data": denoiser.parameterization.sigma_data, "final_loss": loss,
                             "parameters": sum(p.numel() for p in denoiser.parameters()), "options": INPAINT_MODEL}


def generate(denoiser: Denoiser, train_ds: Any, held: Any, args: argparse.Namespace, frac: float) -> dict[str, Any]:
    n = 10 * max(2, round(args.per_class * frac))
    label = torch.arange(n) % 10
    # each sample's length is that of a random training clip of the same digit (digits differ in length)
    train_labels = train_ds.get_batch(torch.arange(len(train_ds))).cond["label"]
    g = torch.Generator().manual_seed(args.seed)
    idx = torch.stack([(train_labels == k).nonzero().flatten()[torch.randint(int((train_labels == k).sum()), (),
                                                                            generator=g)] for k in label.tolist()])
    padding = train_ds.get_batch(idx).padding
    with torch.no_grad():
        res = sample(denoiser, shape=train_ds.sample_shape, n=n, seed=args.seed, sampler="heun", schedule=EDM(),
                     steps=args.steps, spec=train_ds.spec, padding=padding, cond={"label": label},
                     cfg_scale=args.cfg, keep_trajectory=False)
    batch = Batch(x=res.x, padding=padding, cond={"label": label})
    return {"batch": batch, "nfe": res.nfe, "seconds": res.seconds, "accuracy": audio_accuracy(batch, held),
            "fd": audio_fd(batch, held)}


def inpaint(denoiser: Denoiser, held: Any, args: argparse.Namespace, mask: str, ms: float,
            frac: float, conditional: bool = False) -> dict[str, Any]:
    b = held.get_batch(torch.arange(min(max(4, round(args.impute_n * frac)), len(held))))
    b = Batch(x=b.x, padding=b.padding, cond={"label": torch.full((len(b),), -1)})  # no label: fair vs baseline
    target = getattr(masks, mask)(b.padding, torch.Generator().manual_seed(1234), ms=ms)
    start = time.process_time()
    with torch.no_grad():
        imp = impute(denoiser, b, target, n_samples=args.impute_samples, seed=args.seed, sampler="heun",
                     schedule=EDM(), steps=args.steps, spec=held.spec, conditional_model=conditional)
    cpu = time.process_time() - start
    # the baseline: linear interpolation of the log-mel frames across a gap; the last given frame
    # repeated for a continuation
    if mask == "continuation":
        fill = repeat_last_frame(imp.truth * imp.given, imp.given)
    else:
        fill = linear_interpolation(imp.truth, imp.given)
    base = type(imp)(samples=fill[:, None], truth=imp.truth, given=imp.given, target=imp.target, padding=imp.padding)
    return {"imputation": imp, "lsd_db": impute_lsd(imp, held), "sc": impute_sc(imp, held),
            "baseline": "repeat_last_frame" if mask == "continuation" else "linear_interpolation",
            "baseline_lsd_db": impute_lsd(base, held), "baseline_sc": impute_sc(base, held),
            "clips": len(b), "targets": int(imp.target.sum()), "nfe": imp.nfe, "seconds": imp.seconds,
            "cpu_seconds": round(cpu, 1)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    RESULTS.mkdir(exist_ok=True)
    pics = RESULTS / "audio"
    pics.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    ds: AudioDataset = load_espeak_digits(**({"variants": "m1,f2", "speeds": "175"} if args.quick else {}))
    train_ds, held = holdout_split(ds, 0.1, seed=0)
    out: dict[str, Any] = {"dataset": {"name": "espeak_digits", "clips": len(ds), "held_out": len(held),
                                       "codec": repr(ds.codec), "load_seconds": time.perf_counter() - t0},
                           "args": vars(args)}
    out["models"] = {}
    if args.backbones:  # the generation references (the reference classifier trains here)
        clf = reference_classifier(ds, progress=True)
        out["classifier_val_accuracy"] = clf.info["val_accuracy"]
        real = load_asterisk_digits()
        out["griffin_lim_floor"] = {"asterisk": round_trip_error(real.codec, real.waves or []),
                                    "espeak": round_trip_error(ds.codec, (ds.waves or [])[:: max(1, len(ds) // 60)])}
        gauss = gaussian_baseline(train_ds, 10 * args.per_class, seed=args.seed)
        held_all = held.get_batch(torch.arange(len(held)))
        out["baselines"] = {"gaussian_fd": audio_fd(gauss, held),
                            "held_out_vs_train_fd": audio_fd(held_all, train_ds),
                            "held_out_accuracy": audio_accuracy(held_all, held)}
    for name in args.backbones:
        frac = EVAL_FRACTION[name]
        budget = args.budget if name == "mel_conv1d" else args.unet_budget
        denoiser, info = train(name, train_ds, budget, args.seed, args.batch)
        gen = generate(denoiser, train_ds, held, args, frac)
        out["models"][name] = {"train": info, "generate": {k: v for k, v in gen.items() if k != "batch"},
                               "impute": imputations(denoiser, held, args, frac, pics / name, conditional=False)}
        plot_samples(gen["batch"], held_all, pics / f"{name}-samples.png")
        with torch.no_grad():
            traj = sample(denoiser, shape=train_ds.sample_shape, n=2, seed=args.seed, sampler="heun", schedule=EDM(),
                          steps=args.steps, spec=train_ds.spec, padding=gen["batch"].padding[:2],
                          cond={"label": torch.arange(2)}, cfg_scale=args.cfg, keep_trajectory=True).trajectory
        plot_trajectory([Batch(x=x, padding=gen["batch"].padding[:2]) for x in traj or []],
                        pics / f"{name}-trajectory.png")
        first = gen["batch"]
        save_samples(Batch(x=first.x[:10], padding=first.padding[:10], cond={"label": first.cond["label"][:10]}),
                     pics / f"{name}-wav")
        print(json.dumps(out["models"][name], indent=1, default=str), flush=True)
    for mode in args.prior_fill if args.inpaint_cpu > 0 else ():
        denoiser, info = train_conditional(train_ds, mode, args.inpaint_cpu, args.seed, args.batch)
        name = f"mel_conv1d conditional, prior_fill={mode}"
        stem = pics / ("conditional" if mode == "none" else f"conditional-{mode}")
        out["models"][name] = {"train": info, "impute": imputations(denoiser, held, args, 1.0, stem, conditional=True)}
        print(json.dumps(out["models"][name], indent=1, default=str), flush=True)
    return out


def imputations(denoiser: Denoiser, held: Any, args: argparse.Namespace, frac: float, stem: Path, *,
                conditional: bool) -> dict[str, Any]:
    """Gaps of every length in GAPS_MS and a 250 ms continuation; pictures of the 200 ms gap and the continuation."""
    tasks = [("time_gap", ms) for ms in GAPS_MS] + [("continuation", 250.0)]
    res: dict[str, Any] = {}
    for mask, ms in tasks:
        r = inpaint(denoiser, held, args, mask, ms, frac, conditional=conditional)
        res[f"{mask}_{ms:.0f}ms"] = {k: v for k, v in r.items() if k != "imputation"}
        if ms in (200.0, 250.0):
            plot_imputation(r["imputation"], stem.with_name(f"{stem.name}-{mask}.png"))
    return res


def table(r: dict[str, Any]) -> str:
    lines = []
    if "baselines" in r:
        b = r["baselines"]
        lines += [f"reference classifier val accuracy {r['classifier_val_accuracy']:.3f}; held-out data: accuracy "
                  f"{b['held_out_accuracy']:.3f}, FD vs train {b['held_out_vs_train_fd']:.3g}; Gaussian fit FD "
                  f"{b['gaussian_fd']:.3g}",
                  "Griffin-Lim round trip (floor): " + "; ".join(
                      f"{k} LSD {v['lsd_db']:.2f} dB, SC {v['spectral_convergence']:.3f}"
                      for k, v in r["griffin_lim_floor"].items()),
                  "", "generation: backbone | params | steps | min | NFE | acc | FD"]
    for name, m in r["models"].items():
        if "generate" in m:
            g, t = m["generate"], m["train"]
            lines.append(" | ".join(str(v) for v in (name, t["parameters"], t["steps"], f"{t['minutes']:.1f}",
                                                     g["nfe"], f"{g['accuracy']:.3f}", f"{g['fd']:.3g}")))
    lines += ["", "imputation (sample median; baseline: linear interpolation for gaps, last frame repeated for "
                  "continuation): model | task | LSD dB | baseline LSD | SC | baseline SC"]
    for name, m in r["models"].items():
        if "cpu_seconds" in m["train"]:
            t = m["train"]
            lines.append(f"{name}: {t['steps']} steps in {t['cpu_seconds']} CPU s, sigma_data {t['sigma_data']}")
        for task, v in m["impute"].items():
            lines.append(" | ".join((name, task, f"{v['lsd_db']:.2f}", f"{v['baseline_lsd_db']:.2f}", f"{v['sc']:.3f}",
                                     f"{v['baseline_sc']:.3f}")))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=6.0, help="training minutes of mel_conv1d (CPU wall clock)")
    p.add_argument("--unet-budget", type=float, default=2.0, help="training minutes of mel_unet")
    p.add_argument("--inpaint-cpu", type=float, default=480.0,
                   help="training CPU seconds (time.process_time) of each masked conditional mel_conv1d for gaps / "
                        "continuation (0: skip)")
    p.add_argument("--prior-fill", nargs="+", default=["none"], choices=MODES,
                   help="model.prior_fill of the conditional models: one model per mode, same CPU budget each")
    p.add_argument("--backbones", nargs="*", default=list(MODELS), choices=list(MODELS),
                   help="class-conditional generation models (none given: skip generation and its references)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=18, help="Heun steps (NFE = 2 * steps - 1, x2 with CFG)")
    p.add_argument("--cfg", type=float, default=2.0, help="classifier-free guidance scale")
    p.add_argument("--per-class", type=int, default=40)
    p.add_argument("--impute-n", type=int, default=48)
    p.add_argument("--impute-samples", type=int, default=8)
    p.add_argument("--threads", type=int, default=1, help="torch threads (one is fastest on the shared CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a smoke run on 200 clips (use a tiny --budget)")
    p.add_argument("--out", default=None, help="results file name under benchmarks/results (default audio.json)")
    args = p.parse_args()
    results = run(args)
    print("\n" + table(results))
    name = args.out or ("audio-quick.json" if args.quick else "audio.json")
    (RESULTS / name).write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
