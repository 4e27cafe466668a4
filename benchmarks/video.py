"""Video frame-prediction benchmark on moving digits: does a conditional space-time U-Net keep the
digit's identity AND its motion, compared with the copy-last-frame baseline? And on real footage
(``--dataset opencv_sample``: OpenCV's ``vtest.avi`` pedestrians), is its MAE below copy-last-frame?

A ``video_unet`` is trained CSDI-style (``train.conditional``, mask ``future_frames`` with 2 given
frames) for a wall-clock budget on the CPU; the held-out clips' later frames are hidden and sampled
S times. Scores on the predicted frames: ``digit_identity`` (the frame classifier labels them as the
clip's digit; also per frame ahead), ``centroid_error`` (pixels between the digit's centre in predicted and true frames,
also per frame ahead), ``mae`` (intensities in [0, 1]) and the temporal statistic ``frame_diff_w1``
of whole predicted clips. ``--window 3`` instead trains on 3-frame windows and predicts one frame
at a time (block-autoregressive, :func:`polydiff_video.predict.predict_autoregressive`).
Baselines: ``copy_last_frame`` repeats the last given frame (identity kept, no motion);
``extrapolate`` moves the last given frame on by the given frames' global motion (no model);
``mean_frame`` fills the mean training frame (a centred blur: a low centroid error without any
digit); "truth" scores the true frames (the classifier's accuracy: the ceiling).

``--prior-fill none condition residual`` trains one model per ``model.prior_fill`` mode (the plugin's
fill, :func:`polydiff_video.fill.motion_fill`: the last given frame moved on by the global motion;
``condition`` feeds it as input, ``residual`` diffuses x - fill with sigma_data of x - fill estimated by
:func:`polydiff.app.runs.residual_sigma_data`; its EDM schedule and training levels scaled by sigma_data / 0.5,
``--residual-p-mean`` -2.6, tuned with ``--validate``), each for the same ``--cpu-seconds`` of
``time.process_time`` (``--budget`` minutes of wall clock otherwise). On footage the split is in time
(training clips from the first ``1 - --holdout`` of the video, held-out clips from the rest, no clip
straddling), and only MAE and frame_diff_w1 are scored (no digits); ``--validate F`` scores the
training part's last ``F`` instead (tuning: the held-out clips are not read). Prints a table and writes
``benchmarks/results/video.json`` (``--out``). Run it under the shared lock::

    flock /tmp/polydiff-heavy.lock python benchmarks/video.py --budget 20
    python benchmarks/video.py --dataset opencv_sample --prior-fill none residual --cpu-seconds 240
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import time
from pathlib import Path
from typing import Any

import torch

from polydiff import EDM, Batch, Denoiser, NoiseLevels, Parameterization, TrainConfig, Trainer, Weighting, plugins
from polydiff.app.config import parse_options
from polydiff.app.runs import residual_sigma_data, resolve_config
from polydiff.diffusion.data import holdout_split
from polydiff.diffusion.imputation import Imputation, impute, mae, rmse
from polydiff.diffusion.prior_fill import MODES, attach_prior_fill, resolve_prior_fill
from polydiff.diffusion.schedules import scaled_to_data
from polydiff_video.backbone import VideoUNet
from polydiff_video.data import VTEST, VideoDataset, clips_of, frame_windows, load_moving_digits, read_video
from polydiff_video.masks import future_frames
from polydiff_video.metrics import (
    centroid_error,
    centroids,
    classifier_of,
    copy_last_frame,
    digit_identity,
    digit_identity_by_frame,
    frame_diff_w1,
    target_frames,
)
from polydiff_video.motion import extrapolated_frames
from polydiff_video.plots import plot_imputation
from polydiff_video.predict import predict_autoregressive

RESULTS = Path(__file__).parent / "results"
DATA = {"n": 3000, "frames": 6, "size": 16, "digit_size": 8, "speed": 2.0, "seed": 0}
# vtest.avi: 795 frames at 10 fps, every 2nd frame (5 fps), centre crop downscaled to 16x16 grey
FOOTAGE = {"frames": 6, "size": 16, "channels": 1, "every": 2, "stride": 1}
# 2x2 patches: every level at half the side, so four times the channels cost about the same per step.
# Spatial attention at the 4x4 level: temporal attention only links the same place in other frames,
# so without it a predicted frame cannot see the digit where it was (factorised space-time attention)
MODEL: dict[str, Any] = {"channels": 32, "channel_mult": "1,2", "temporal": "attention", "heads": 4, "patch": 2,
         "attention_resolution": 4}
# every frame also sees the 2 nearest given frames as input channels (MCVD-style frame stacking):
# without them identity stayed at chance after 2000 steps (docs/plugins/video.md)
CONTEXT = 2
GIVEN = 2


def split_in_time(frames: int, holdout: float, validate: float = 0.0) -> tuple[range, range]:
    """Frame indices of the training and the scored part: the first ``1 - holdout`` of ``frames`` and the
    rest; with ``validate > 0`` (tuning) the held-out part is dropped and the training part's own last
    ``validate`` fraction is scored instead, so tuning never reads a held-out frame."""
    cut = round((1 - holdout) * frames)
    if validate <= 0:
        return range(cut), range(cut, frames)
    inner = round((1 - validate) * cut)
    return range(inner), range(inner, cut)


def load_footage(path: str, holdout: float, validate: float = 0.0,
                 augment: tuple[str, ...] = ()) -> tuple[VideoDataset, VideoDataset]:
    """``vtest.avi`` split in time (:func:`split_in_time`): clips of each part (no clip has frames on both
    sides); ``validate > 0``: training and validation clips, both from the training part.

    ``augment`` adds training clips only (the scored clips never change): ``"phases"``, clips of the
    other frames that ``every`` skips (the same frame rate, shifted by one source frame, all before the
    scored part's first frame); ``"hflip"``, every training clip mirrored left to right (a street seen
    in a mirror is still a street)."""
    every = FOOTAGE["every"]
    source = read_video(path, size=FOOTAGE["size"], channels=FOOTAGE["channels"])
    video = source[::every]
    fit, scored = split_in_time(len(video), holdout, validate)
    opts = {**FOOTAGE, "path": path, "augment": list(augment)}
    for name, r in (("training", fit), ("scored", scored)):
        if len(r) < FOOTAGE["frames"]:
            raise ValueError(f"the {name} part ({len(r)} frames after every {every}) holds no clip of "
                             f"{FOOTAGE['frames']} frames; change --validate / --holdout")
    parts = [clips_of(video[r.start:r.stop], FOOTAGE["frames"], FOOTAGE["stride"]) for r in (fit, scored)]
    train = [parts[0]]
    if "phases" in augment:  # source frames every*k + j, j = 1..every-1, before the first scored frame
        end = every * (fit.stop - 1)
        train += [clips_of(source[j:end:every], FOOTAGE["frames"], FOOTAGE["stride"]) for j in range(1, every)]
    if "hflip" in augment:
        train += [c.flip(-1) for c in train]
    return (VideoDataset(torch.cat(train), name="opencv_sample", options={**opts, "part": "train"}),
            VideoDataset(parts[1], name="opencv_sample",
                         options={**opts, "part": "validation" if validate > 0 else "test"}))


def scaled(sigma_data: float, levels: NoiseLevels, scale: bool) -> tuple[EDM, NoiseLevels]:
    """EDM's schedule and lognormal training levels for data of spread ``sigma_data``: with ``scale``, both
    scaled by ``sigma_data / 0.5`` (EDM's defaults are tuned for sigma_data = 0.5), so a residual of spread
    0.08 is trained and sampled at the noise levels that matter for it (as benchmarks/timeseries.py)."""
    return scaled_to_data(EDM(), levels, sigma_data) if scale else (EDM(), levels)  # type: ignore[return-value]


def with_prior_fill(denoiser: Denoiser, ds: Any, mode: str, given: int, seed: int) -> float:
    """Attach ``model.prior_fill = mode`` as :func:`polydiff.app.runs.build_denoiser` does; a residual model's
    sigma_data is that of x - fill on the training masks (:func:`polydiff.app.runs.residual_sigma_data`).
    Returns the sigma_data to use."""
    attach_prior_fill(denoiser, resolve_prior_fill(mode, plugins.get_modality("video"), conditional=True))
    if mode != "residual":
        return float(ds.get_batch(torch.arange(len(ds))).x.std())
    config = resolve_config({"modality": "video", "model": {"prior_fill": mode, "conditional": True},
                             "train": {"conditional": True, "mask_strategy": "future_frames",
                                       "mask_options": {"given": given}, "seed": seed}})
    return residual_sigma_data(config, ds)


def train(ds: Any, minutes: float, seed: int, batch_size: int, context: int, given: int,
          levels: NoiseLevels | None = None, extrapolate: int = 0, prior_fill: str = "none",
          cpu_seconds: float = 0.0, scale_noise: bool = False, sigma_data_scale: float = 1.0,
          model: dict[str, Any] | None = None, device: str = "cpu",
          norm: str = "l2", parameterization: str = "edm") -> tuple[Denoiser, dict[str, Any]]:
    """Conditional training on future_frames masks (``given`` frames) for ``cpu_seconds`` of
    ``time.process_time`` (chunks of 25 steps) if > 0, else a wall-clock budget (``train.max_minutes``).
    ``scale_noise``: schedule and training levels scaled by sigma_data / 0.5 (:func:`scaled`); the info's
    ``schedule`` is the one to sample with. ``sigma_data_scale``: the preconditioning's sigma_data is
    this times the data's (the schedule still follows the data's): below 1 the net predicts x0 rather than
    the noise down to lower levels. ``norm``: the loss's ``weighting.norm`` (``l1``: D learns the median).
    ``parameterization``: ``x0`` for a net that outputs the denoised clip (``warp``)."""
    torch.manual_seed(seed)
    model = {**MODEL, **(model or {})}
    t, c, h, w = ds.sample_shape
    net = VideoUNet(frames=t, in_channels=c, resolution=(h, w), conditional=True, context=context,
                   extrapolate=extrapolate, **model)
    denoiser = Denoiser(net, Parameterization(kind="edm", sigma_data=1.0))
    cpu0 = time.process_time()
    sigma_data = with_prior_fill(denoiser, ds, prior_fill, given, seed)
    denoiser.parameterization = Parameterization(kind=parameterization,  # type: ignore[arg-type]
                                                 sigma_data=sigma_data * sigma_data_scale)
    schedule, levels = scaled(sigma_data, levels or NoiseLevels(kind="lognormal"), scale_noise)
    # a few thousand steps on a shared CPU: an EMA half-life of ~140 steps forgets the early weights
    cfg = TrainConfig(steps=10**6, batch_size=batch_size, lr=2e-3, warmup_steps=50, ema_decay=0.995, grad_clip=1.0,
                      conditional=True, mask_strategy="future_frames", mask_options={"given": given},
                      label_dropout=0.0, device=device, seed=seed, log_every=25, checkpoint_every=10**9,
                      max_minutes=None if cpu_seconds > 0 else minutes)
    trainer = Trainer(denoiser=denoiser, dataset=ds, schedule=schedule, noise_levels=levels,
                      weighting=Weighting(kind="edm", norm=norm), config=cfg)
    start = time.perf_counter()
    if cpu_seconds > 0:  # the rest of the budget after setup
        trainer.config = dataclasses.replace(cfg, max_cpu_seconds=max(cpu_seconds - (time.process_time() - cpu0), 1e-3))
    loss = trainer.fit(progress=cpu_seconds <= 0)["loss"]
    trainer.apply_ema()  # evaluate the EMA weights
    info = {"steps": trainer.step, "minutes": (time.perf_counter() - start) / 60, "batch_size": batch_size,
            "cpu_seconds": round(time.process_time() - cpu0, 1), "prior_fill": prior_fill,
            "parameters": sum(p.numel() for p in net.parameters()), "final_loss": loss,
            "preconditioning_sigma_data": sigma_data * sigma_data_scale, "norm": norm,
            "parameterization": parameterization,
            "model": {**model, "context": context, "extrapolate": extrapolate}, "sigma_data": sigma_data,
            "schedule": {"sigma_lo": schedule.sigma_lo, "sigma_hi": schedule.sigma_hi},
            "levels": {"p_mean": levels.p_mean, "p_std": levels.p_std}}
    return denoiser.eval(), info


def scores(imp: Imputation, test: Any, digits: bool = True) -> dict[str, Any]:
    """The frame-prediction scores; ``digits=False`` (footage): MAE and frame_diff_w1 only."""
    clips = Batch(x=imp.samples[:, 0])  # whole clips: given frames + the first sample's predictions
    if not digits:
        return {"mae": mae(imp, test), "rmse": rmse(imp, test), "frame_diff_w1": frame_diff_w1(clips, test)}
    m = target_frames(imp)
    per_frame = (centroids(imp.samples) - centroids(imp.truth)[:, None]).norm(dim=-1).mean((0, 1))  # [T]
    return {"digit_identity": digit_identity(imp, test),
            "digit_identity_by_frame": [round(v, 3) for v in digit_identity_by_frame(imp, test)],
            "centroid_error": centroid_error(imp, test),
            "mae": mae(imp, test), "frame_diff_w1": frame_diff_w1(clips, test),
            "centroid_error_by_frame": [round(float(e), 3) for e, k in zip(per_frame, m.any(0), strict=True) if k]}


def parse_sampler(text: str) -> tuple[str, int, dict[str, Any]]:
    """``name:steps[:option=value...]``, e.g. ``restart:50:solver=ddpm:sigma_restart=0.5``."""
    name, steps, *pairs = text.split(":")
    return name, int(steps), parse_options(pairs, f"sampler {text!r}")


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """``video_unet`` options over :data:`MODEL`: ``--channels``, ``--dropout``, then ``--model KEY=VALUE``
    (the benchmark's own flags set the clip shape, ``conditional``, ``context`` and ``extrapolate``)."""
    options = parse_options(args.model, "--model")
    own = {"frames", "in_channels", "resolution", "conditional", "context", "extrapolate", "self"}
    valid = set(inspect.signature(VideoUNet.__init__).parameters) - own
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(f"--model: unknown video_unet option(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(sorted(valid))}")
    return {"channels": args.channels, "dropout": args.dropout, **options}


def trained(args: argparse.Namespace, windowed: Any, given: int, levels: NoiseLevels,
            mode: str) -> tuple[Denoiser, dict[str, Any]]:
    """Train for ``--cpu-seconds`` / ``--budget`` minutes (and write ``--save``), or rebuild a saved
    denoiser (``--load``), with ``model.prior_fill = mode``."""
    if not args.load:
        residual = mode == "residual"
        if residual:
            levels = dataclasses.replace(levels, p_mean=args.residual_p_mean)
        denoiser, info = train(windowed, args.budget, args.seed, args.batch_size, args.context, given, levels,
                               args.extrapolate, prior_fill=mode, cpu_seconds=args.cpu_seconds,
                               scale_noise=residual and args.scale_noise, sigma_data_scale=args.sigma_data_scale,
                               model=model_options(args), device=args.device,
                               norm=args.norm, parameterization=args.parameterization)
        if args.save:
            torch.save({"state": denoiser.state_dict(), "sigma_data": info["preconditioning_sigma_data"], "info": info},
                       args.save)
        return denoiser, info
    saved = torch.load(args.load, weights_only=True)
    t, c, h, w = windowed.sample_shape
    net = VideoUNet(frames=t, in_channels=c, resolution=(h, w), conditional=True, context=args.context,
                    extrapolate=args.extrapolate, **{**MODEL, **model_options(args)})
    kind = saved["info"].get("parameterization", "edm")
    denoiser = Denoiser(net, Parameterization(kind=kind, sigma_data=saved["sigma_data"]))
    denoiser.load_state_dict(saved["state"])
    denoiser.to(args.device)
    attach_prior_fill(denoiser, resolve_prior_fill(mode, plugins.get_modality("video"), conditional=True))
    return denoiser.eval(), {**saved["info"], "loaded_from": str(args.load)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)  # on a shared 2-core machine one thread is several times faster
    digits = args.dataset == "moving_digits"
    train_ds: Any
    test: Any
    if digits:
        data: dict[str, Any] = {"name": "moving_digits", **DATA, "speed": args.speed}
        full = load_moving_digits(**DATA | {"speed": args.speed})
        train_ds, test = holdout_split(full, 0.1, seed=0)
        val_accuracy = classifier_of(full).info.get("val_accuracy")  # trained once, cached in $POLYDIFF_CACHE
    else:
        data = {"name": "opencv_sample", **FOOTAGE, "path": args.path, "holdout_in_time": args.holdout,
                "validate": args.validate, "augment": args.augment}
        train_ds, test = load_footage(args.path, args.holdout, args.validate, tuple(args.augment))
        data |= {"train_clips": len(train_ds), "test_clips": len(test)}
        val_accuracy = None
    levels = NoiseLevels(kind="lognormal", p_mean=args.p_mean, p_std=args.p_std)
    # --window: a model of short windows predicting their last frame, rolled forward frame by frame
    windowed = frame_windows(train_ds, args.window) if args.window else train_ds
    given = args.window - 1 if args.window else GIVEN
    batch = test.get_batch(torch.arange(min(args.n, len(test)))).to(args.device)
    rows: dict[str, Any] = {}
    infos: dict[str, Any] = {}
    for mode in args.prior_fill:
        denoiser, info = trained(args, windowed, given, levels, mode)
        infos[mode] = info | {"window": args.window}
        schedule = EDM(**info.get("schedule", {}))  # a saved model from before the scaling: EDM's defaults
        rows |= predictions(denoiser, batch, test, windowed, args, mode, digits, schedule)
        if args.posterior_mean:
            rows |= posterior_means(denoiser, batch, test, windowed, args, mode, digits, schedule, info["sigma_data"],
                                    median=info.get("norm", "l2") == "l1")  # a loaded model's own loss
    first = rows.pop("_first")
    RESULTS.mkdir(exist_ok=True)
    plot_imputation(first, RESULTS / ("video-future_frames.png" if digits else "video-footage-future_frames.png"), n=6)
    truth = dataclasses.replace(first, samples=first.truth[:, None])
    # the mean training frame (a centred blur) in every hidden frame: low centroid error, no motion
    plain = load_footage(args.path, args.holdout, args.validate)[0] if args.augment else train_ds  # not mirrored
    mean = plain.get_batch(torch.arange(len(plain))).x.mean((0, 1))
    blur = dataclasses.replace(first, samples=torch.where(first.given.bool(), first.truth, mean)[:, None])
    # motion-compensated extrapolation of the given frames (no model): the classical predictor
    moved = extrapolated_frames(first.truth * first.given, first.given, max(args.extrapolate, 3))[0]
    extrap = dataclasses.replace(first, samples=torch.where(first.given.bool(), first.truth, moved)[:, None])
    rows |= {"copy_last_frame": scores(copy_last_frame(first), test, digits),
             "extrapolate": scores(extrap, test, digits), "mean_frame": scores(blur, test, digits),
             "truth": scores(truth, test, digits)}
    return {"data": data, "given_frames": GIVEN, "train": infos, "n_test_clips": len(batch),
            "samples_per_clip": args.samples, "samplers": args.samplers,
            "classifier_val_accuracy": val_accuracy, "threads": args.threads, "device": args.device,
            "results": rows}


def predictions(denoiser: Denoiser, batch: Batch, test: Any, windowed: Any, args: argparse.Namespace, mode: str,
                digits: bool, schedule: EDM) -> dict[str, Any]:
    """One row per sampler of the model with ``prior_fill = mode``; ``"_first"``: the first imputation."""
    rows: dict[str, Any] = {}
    for text in args.samplers:
        name, steps, options = parse_sampler(text)
        sampling: dict[str, Any] = {"sampler": name, "steps": steps, "options": options, "schedule": schedule,
                                    "spec": windowed.spec, "progress": True}
        cpu = time.process_time()
        with torch.no_grad():
            if args.window:
                imp = predict_autoregressive(denoiser, batch, given=GIVEN, window=args.window,
                                             n_samples=args.samples, seed=0, **sampling)
            else:
                target = future_frames(torch.ones_like(batch.x), torch.Generator().manual_seed(0), given=GIVEN)
                imp = impute(denoiser, batch, target, n_samples=args.samples, conditional_model=True, seed=0,
                             **sampling)
        imp = imp.to("cpu")  # the metrics' classifier and the baselines run on the CPU
        rows[f"video_unet prior_fill={mode} {text}"] = {**scores(imp, test, digits), "nfe": imp.nfe,
                                                         "sampling_seconds": round(imp.seconds, 1),
                                                         "sampling_cpu_seconds": round(time.process_time() - cpu, 1)}
        rows.setdefault("_first", imp)
    return rows


def posterior_means(denoiser: Denoiser, batch: Batch, test: Any, windowed: Any, args: argparse.Namespace, mode: str,
                    digits: bool, schedule: EDM, sigma_data: float, median: bool = False) -> dict[str, Any]:
    """``--posterior-mean S...``: the mean of ``--samples`` one-step denoisings from noise at ``s *
    sigma_data`` (Euler, one step to 0), an estimate of E[x | given frames] without sampling noise (of the
    per-pixel median, averaged over the draws, for a model trained with ``--norm l1``: ``median``)."""
    rows: dict[str, Any] = {}
    target = future_frames(torch.ones_like(batch.x), torch.Generator().manual_seed(0), given=GIVEN)
    for s in args.posterior_mean:
        with torch.no_grad():
            imp = impute(denoiser, batch, target, n_samples=args.samples, conditional_model=True, seed=0,
                         sampler="euler", steps=1, sigmas=torch.tensor([s * sigma_data, 0.0]), schedule=schedule,
                         spec=windowed.spec)
        mean = dataclasses.replace(imp.to("cpu"), samples=imp.samples.mean(1, keepdim=True).cpu())
        what = "median" if median else "mean"
        rows[f"video_unet prior_fill={mode} posterior {what} @ {s:g} sigma_data"] = {
            **scores(mean, test, digits), "rmse": rmse(mean, test), "nfe": imp.nfe}  # rmse: digits rows lack it
    return rows


def table(res: dict[str, Any]) -> str:
    width = max(16, *(len(k) + 2 for k in res["results"]))
    head = (f"{'method':<{width}}{'digit_identity':>16}{'centroid_err_px':>17}{'mae':>8}{'frame_diff_w1':>15}"
            "  identity / centroid error per frame ahead")
    lines = [head, "-" * len(head)]
    for name, r in res["results"].items():
        if "digit_identity" not in r:  # footage: no digits
            lines.append(f"{name:<{width}}{'-':>16}{'-':>17}{r['mae']:>8.4f}{r['frame_diff_w1']:>15.4f}"
                         f"  rmse {r['rmse']:.4f}")
            continue
        lines.append(f"{name:<{width}}{r['digit_identity']:>16.3f}{r['centroid_error']:>17.2f}{r['mae']:>8.3f}"
                     f"{r['frame_diff_w1']:>15.4f}  {r['digit_identity_by_frame']} / {r['centroid_error_by_frame']}")
    for mode, t in res["train"].items():
        lines.append(f"train prior_fill={mode}: {t['steps']} steps x {t['batch_size']} clips in {t['minutes']:.1f} min "
                     f"({t['cpu_seconds']} CPU s), sigma_data {t['sigma_data']:.4f}, {t['parameters']:,} parameters")
    acc = res["classifier_val_accuracy"]
    lines.append(f"{res['n_test_clips']} held-out clips x {res['samples_per_clip']} samples (NFE per sample in the "
                 "JSON)" + (f"; frame classifier val. accuracy {acc:.3f}" if acc is not None else ""))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, default=20.0, help="training minutes (wall clock)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--n", type=int, default=64, help="held-out clips to predict")
    p.add_argument("--samples", type=int, default=3, help="samples per clip")
    p.add_argument("--samplers", nargs="+", default=["heun:12"],
                   help="samplers to score, each name:steps[:option=value...], e.g. "
                        "restart:50:solver=ddpm:sigma_restart=0.5 (the first is drawn)")
    p.add_argument("--save", help="write the trained denoiser here (torch.save)")
    p.add_argument("--load", help="skip training: score the denoiser --save wrote (same model flags)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speed", type=float, default=DATA["speed"], help="digit speed in px/frame")
    # the given frames matter where the hidden ones are drowned (sigma >= 1): EDM's -1.2 trains there
    # too rarely (measured in docs/plugins/video.md)
    p.add_argument("--p-mean", type=float, default=0.0, help="training ln sigma mean (lognormal)")
    p.add_argument("--p-std", type=float, default=1.2, help="training ln sigma std")
    # tuned on footage validation clips (docs/plugins/video.md): x - fill's corrections are small
    p.add_argument("--residual-p-mean", type=float, default=-2.6,
                   help="training ln sigma mean of prior_fill = residual models (before --scale-noise's shift)")
    p.add_argument("--scale-noise", action=argparse.BooleanOptionalAction, default=True,
                   help="residual models: EDM's schedule and training levels scaled by sigma_data / 0.5")
    p.add_argument("--validate", type=float, default=0.0,
                   help="footage tuning: score the last VALIDATE fraction of the training part instead of the "
                        "held-out clips (which are then never read)")
    p.add_argument("--sigma-data-scale", type=float, default=1.0,
                   help="preconditioning sigma_data = this x the data's (the schedule keeps the data's); < 1: the "
                        "net predicts x0 rather than noise at low levels")
    p.add_argument("--posterior-mean", type=float, nargs="+", default=[],
                   help="also score the mean of --samples one-step denoisings from noise at each of these "
                        "multiples of sigma_data (rows 'posterior mean @ s', 'median' for an L1 model; MAE and RMSE)")
    p.add_argument("--norm", choices=["l2", "l1"], default="l2",
                   help="the loss's weighting.norm: l1 trains D on the per-pixel median (Palette) instead of the mean")
    p.add_argument("--parameterization", choices=["edm", "x0"], default="edm",
                   help="what the net predicts; x0 for --model warp=R (its output is the denoised clip); "
                        "--load uses the saved model's")
    p.add_argument("--channels", type=int, default=MODEL["channels"],
                   help="the U-Net's base channels (model size at a fixed budget)")
    p.add_argument("--model", nargs="*", default=[], metavar="KEY=VALUE",
                   help="video_unet options over the defaults, e.g. patch=1 channel_mult=1 attention_resolution=0")
    p.add_argument("--dropout", type=float, default=0.0, help="the U-Net's dropout (EDM uses 0.13 on CIFAR-10)")
    p.add_argument("--augment", nargs="*", default=[], choices=["phases", "hflip"],
                   help="footage: more training clips (phases: the frames --every skips; hflip: mirrored clips)")
    p.add_argument("--context", type=int, default=CONTEXT, help="given frames stacked onto every frame (0: off)")
    p.add_argument("--window", type=int, default=0,
                   help="train on windows of this many frames predicting the last one and roll the model forward "
                        "frame by frame (block-autoregressive, MCVD); 0: one model predicts all hidden frames at once")
    p.add_argument("--extrapolate", type=int, default=0,
                   help="also give every frame the given frames moved on by their global motion (search radius "
                        "in px; 0: off)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="where to train and sample, e.g. cuda (budget: --budget wall "
                                                 "minutes there, since CPU seconds do not count GPU work)")
    p.add_argument("--dataset", choices=["moving_digits", "opencv_sample"], default="moving_digits",
                   help="moving digits, or OpenCV's vtest.avi street footage (split in time)")
    p.add_argument("--path", default=str(VTEST), help="the footage file of --dataset opencv_sample")
    p.add_argument("--holdout", type=float, default=0.15, help="footage: the held-out final fraction of the video")
    p.add_argument("--prior-fill", nargs="+", default=["none"], choices=MODES,
                   help="model.prior_fill: one model per mode (motion_fill), each with the same budget")
    p.add_argument("--cpu-seconds", type=float, default=0.0,
                   help="training budget per model in CPU seconds (time.process_time); 0: --budget wall minutes")
    p.add_argument("--out", default="video.json", help="results file name under benchmarks/results")
    args = p.parse_args()
    if args.load and len(args.prior_fill) > 1:
        p.error("--load scores one saved model: give one --prior-fill mode (the one it was trained with)")
    if not 0 < args.holdout < 1:
        p.error(f"--holdout must be in (0, 1), got {args.holdout}")
    if not 0 <= args.validate < 1 or (args.validate and args.dataset != "opencv_sample"):
        p.error(f"--validate must be in [0, 1) and is for --dataset opencv_sample, got {args.validate}")
    if args.augment and args.dataset != "opencv_sample":
        p.error("--augment is for --dataset opencv_sample (moving digits are generated: draw more with the data)")
    warp = int(parse_options(args.model, "--model").get("warp", 0))
    if warp and args.parameterization != "x0" and not args.load:
        p.error("--model warp=R makes the net's output the denoised clip: add --parameterization x0")
    if warp and "residual" in args.prior_fill:
        p.error("--model warp=R predicts the clip, not the residual x - fill: use --prior-fill none or condition")
    if args.posterior_mean and args.window:
        p.error("--posterior-mean scores whole-clip imputations; --window predicts frame by frame")
    res = run(args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(table(res))


if __name__ == "__main__":
    main()
