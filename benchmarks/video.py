"""Video frame-prediction benchmark on moving digits: does a conditional space-time U-Net keep the
digit's identity AND its motion, compared with the copy-last-frame baseline?

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
digit); "truth" scores the true frames (the classifier's accuracy: the ceiling). Prints a table
and writes ``benchmarks/results/video.json``. Run it under the shared lock::

    flock /tmp/polydiff-heavy.lock python benchmarks/video.py --budget 20
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from polydiff import EDM, Batch, Denoiser, NoiseLevels, Parameterization, TrainConfig, Trainer, Weighting
from polydiff.config import parse_options
from polydiff.data import holdout_split
from polydiff.imputation import Imputation, impute, mae
from polydiff_video.backbone import VideoUNet
from polydiff_video.data import frame_windows, load_moving_digits
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
# 2x2 patches: every level at half the side, so four times the channels cost about the same per step.
# Spatial attention at the 4x4 level: temporal attention only links the same place in other frames,
# so without it a predicted frame cannot see the digit where it was (factorised space-time attention)
MODEL = {"channels": 32, "channel_mult": "1,2", "temporal": "attention", "heads": 4, "patch": 2,
         "attention_resolution": 4}
# every frame also sees the 2 nearest given frames as input channels (MCVD-style frame stacking):
# without them identity stayed at chance after 2000 steps (docs/plugins/video.md)
CONTEXT = 2
GIVEN = 2


def train(ds: Any, minutes: float, seed: int, batch_size: int, context: int, given: int,
          levels: NoiseLevels | None = None, extrapolate: int = 0) -> tuple[Denoiser, dict[str, Any]]:
    """Conditional training on future_frames masks (``given`` frames) for a wall-clock budget
    (``train.max_minutes``)."""
    torch.manual_seed(seed)
    t, c, h, w = ds.sample_shape
    net = VideoUNet(frames=t, in_channels=c, resolution=(h, w), conditional=True, context=context,
                   extrapolate=extrapolate, **MODEL)
    sigma_data = float(ds.get_batch(torch.arange(len(ds))).x.std())
    denoiser = Denoiser(net, Parameterization(kind="edm", sigma_data=sigma_data))
    # a few thousand steps on a shared CPU: an EMA half-life of ~140 steps forgets the early weights
    cfg = TrainConfig(steps=10**6, batch_size=batch_size, lr=2e-3, warmup_steps=50, ema_decay=0.995, grad_clip=1.0,
                      conditional=True, mask_strategy="future_frames", mask_options={"given": given},
                      label_dropout=0.0, device="cpu", seed=seed, log_every=25, checkpoint_every=10**9,
                      max_minutes=minutes)
    trainer = Trainer(denoiser=denoiser, dataset=ds, schedule=EDM(),
                      noise_levels=levels or NoiseLevels(kind="lognormal"), weighting=Weighting(kind="edm"), config=cfg)
    start = time.perf_counter()
    out = trainer.fit(progress=True)
    for p, e in zip(trainer.params, trainer.ema, strict=True):  # evaluate the EMA weights
        p.data.copy_(e)
    info = {"steps": trainer.step, "minutes": (time.perf_counter() - start) / 60, "batch_size": batch_size,
            "parameters": sum(p.numel() for p in net.parameters()), "final_loss": out["loss"],
            "model": {**MODEL, "context": context, "extrapolate": extrapolate}, "sigma_data": sigma_data}
    return denoiser.eval(), info


def scores(imp: Imputation, test: Any) -> dict[str, Any]:
    m = target_frames(imp)
    per_frame = (centroids(imp.samples) - centroids(imp.truth)[:, None]).norm(dim=-1).mean((0, 1))  # [T]
    clips = Batch(x=imp.samples[:, 0])  # whole clips: given frames + the first sample's predictions
    return {"digit_identity": digit_identity(imp, test),
            "digit_identity_by_frame": [round(v, 3) for v in digit_identity_by_frame(imp, test)],
            "centroid_error": centroid_error(imp, test),
            "mae": mae(imp, test), "frame_diff_w1": frame_diff_w1(clips, test),
            "centroid_error_by_frame": [round(float(e), 3) for e, k in zip(per_frame, m.any(0), strict=True) if k]}


def parse_sampler(text: str) -> tuple[str, int, dict[str, Any]]:
    """``name:steps[:option=value...]``, e.g. ``restart:50:solver=ddpm:sigma_restart=0.5``."""
    name, steps, *pairs = text.split(":")
    return name, int(steps), parse_options(pairs, f"sampler {text!r}")


def trained(args: argparse.Namespace, windowed: Any, given: int,
            levels: NoiseLevels) -> tuple[Denoiser, dict[str, Any]]:
    """Train for ``--budget`` minutes (and write ``--save``), or rebuild a saved denoiser (``--load``)."""
    if not args.load:
        denoiser, info = train(windowed, args.budget, args.seed, args.batch_size, args.context, given, levels,
                               args.extrapolate)
        if args.save:
            torch.save({"state": denoiser.state_dict(), "sigma_data": info["sigma_data"], "info": info}, args.save)
        return denoiser, info
    saved = torch.load(args.load, weights_only=True)
    t, c, h, w = windowed.sample_shape
    net = VideoUNet(frames=t, in_channels=c, resolution=(h, w), conditional=True, context=args.context,
                    extrapolate=args.extrapolate, **MODEL)
    denoiser = Denoiser(net, Parameterization(kind="edm", sigma_data=saved["sigma_data"]))
    denoiser.load_state_dict(saved["state"])
    return denoiser.eval(), {**saved["info"], "loaded_from": str(args.load)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)  # on a shared 2-core machine one thread is several times faster
    data = {**DATA, "speed": args.speed}
    full = load_moving_digits(**data)
    train_ds, test = holdout_split(full, 0.1, seed=0)
    clf = classifier_of(full)  # trained on the dataset's frames once, cached in $POLYDIFF_CACHE
    levels = NoiseLevels(kind="lognormal", p_mean=args.p_mean, p_std=args.p_std)
    # --window: a model of short windows predicting their last frame, rolled forward frame by frame
    windowed = frame_windows(train_ds, args.window) if args.window else train_ds
    given = args.window - 1 if args.window else GIVEN
    denoiser, info = trained(args, windowed, given, levels)
    info["window"] = args.window
    batch = test.get_batch(torch.arange(min(args.n, len(test))))
    rows: dict[str, Any] = {}
    for k, text in enumerate(args.samplers):
        name, steps, options = parse_sampler(text)
        sampling: dict[str, Any] = {"sampler": name, "steps": steps, "options": options, "schedule": EDM(),
                                    "spec": windowed.spec, "progress": True}
        with torch.no_grad():
            if args.window:
                imp = predict_autoregressive(denoiser, batch, given=GIVEN, window=args.window,
                                             n_samples=args.samples, seed=0, **sampling)
            else:
                target = future_frames(torch.ones_like(batch.x), torch.Generator().manual_seed(0), given=GIVEN)
                imp = impute(denoiser, batch, target, n_samples=args.samples, conditional_model=True, seed=0,
                             **sampling)
        rows[f"video_unet {text}"] = {**scores(imp, test), "nfe": imp.nfe, "sampling_seconds": round(imp.seconds, 1)}
        if k == 0:
            first = imp
    RESULTS.mkdir(exist_ok=True)
    plot_imputation(first, RESULTS / "video-future_frames.png", n=6)
    truth = dataclasses.replace(first, samples=first.truth[:, None])
    # the mean training frame (a centred blur) in every hidden frame: low centroid error, no motion
    mean = train_ds.get_batch(torch.arange(len(train_ds))).x.mean((0, 1))
    blur = dataclasses.replace(first, samples=torch.where(first.given.bool(), first.truth, mean)[:, None])
    # motion-compensated extrapolation of the given frames (no model): the classical predictor
    moved = extrapolated_frames(first.truth * first.given, first.given, max(args.extrapolate, 3))[0]
    extrap = dataclasses.replace(first, samples=torch.where(first.given.bool(), first.truth, moved)[:, None])
    rows |= {"copy_last_frame": scores(copy_last_frame(first), test), "extrapolate": scores(extrap, test),
             "mean_frame": scores(blur, test), "truth": scores(truth, test)}
    return {"data": data, "given_frames": GIVEN, "train": info, "n_test_clips": len(batch),
            "samples_per_clip": args.samples, "samplers": args.samplers,
            "classifier_val_accuracy": clf.info.get("val_accuracy"), "threads": args.threads, "results": rows}


def table(res: dict[str, Any]) -> str:
    width = max(16, *(len(k) + 2 for k in res["results"]))
    head = (f"{'method':<{width}}{'digit_identity':>16}{'centroid_err_px':>17}{'mae':>8}{'frame_diff_w1':>15}"
            "  identity / centroid error per frame ahead")
    lines = [head, "-" * len(head)]
    for name, r in res["results"].items():
        lines.append(f"{name:<{width}}{r['digit_identity']:>16.3f}{r['centroid_error']:>17.2f}{r['mae']:>8.3f}"
                     f"{r['frame_diff_w1']:>15.4f}  {r['digit_identity_by_frame']} / {r['centroid_error_by_frame']}")
    t = res["train"]
    lines.append(f"train: {t['steps']} steps x {t['batch_size']} clips in {t['minutes']:.1f} min, "
                 f"{t['parameters']:,} parameters; {res['n_test_clips']} held-out clips x {res['samples_per_clip']} "
                 f"samples (NFE per sample in the JSON); frame classifier val. accuracy "
                 f"{res['classifier_val_accuracy']:.3f}")
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
    p.add_argument("--context", type=int, default=CONTEXT, help="given frames stacked onto every frame (0: off)")
    p.add_argument("--window", type=int, default=0,
                   help="train on windows of this many frames predicting the last one and roll the model forward "
                        "frame by frame (block-autoregressive, MCVD); 0: one model predicts all hidden frames at once")
    p.add_argument("--extrapolate", type=int, default=0,
                   help="also give every frame the given frames moved on by their global motion (search radius "
                        "in px; 0: off)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    res = run(args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "video.json").write_text(json.dumps(res, indent=2) + "\n")
    print(table(res))


if __name__ == "__main__":
    main()
