"""Regenerate every picture the documentation shows (``docs/images/``), from nothing.

    OMP_NUM_THREADS=1 python docs/make_pictures.py                  # all of them
    OMP_NUM_THREADS=1 python docs/make_pictures.py --only image,audio

What it does: for each modality it trains a small model with the settings of ``examples/<modality>.toml``
for a FIXED, SMALL number of steps (``STEPS`` below, far fewer than the example configs), then samples or
imputes it through the public API (``polydiff.train``, ``polydiff.load_run(...).sample() / .impute()``)
and the CLI (``polydiff sample --animate``, ``polydiff compare``), so the pictures are the ones the
plugins' own ``plot_samples`` / ``plot_trajectory`` / ``plot_imputation`` and the compare report draw.
Each picture is then downscaled and palette-quantised to stay small (PNG/GIF, < 150 kB each).

Cost, measured on one thread of a shared 2-core CPU (``time.process_time``; the script prints it per
part): image 127 s, video 219 s, audio 202 s (more the first time, when it synthesises the
espeak-ng digits), molecule 64 s, timeseries 114 s, compare 44 s, points 47 s: about 14 CPU minutes.
Seeds: every training uses ``train.seed = 0`` and the example's data split; every sample and imputation
uses seed 0, so a rerun with the same torch on the same machine should draw the same pictures (not
checked bit for bit).

These are BRIEFLY TRAINED models: the captions in the docs say how many steps, and the pictures show the
data beside the samples so the gap is visible. The documented results tables come from the longer runs
in ``benchmarks/``, not from these models. The runs go to ``--work`` (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polydiff
from polydiff.app.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
MAX_WIDTH = 1000  # pixels; the docs column is narrower than this
COLOURS = 96      # palette size of the quantised PNGs
GIF_FRAMES, GIF_COLOURS = 8, 16  # an animation keeps 8 frames (first and last included) of 16 colours

# Training steps per picture (fixed, so a rerun trains the same model); the captions quote these.
STEPS = {"points": 3000, "image": 500, "video": 300, "audio": 400, "molecule": 2000, "timeseries": 400}
COMMON = {"train.seed": 0, "train.max_minutes": None, "train.warmup_steps": 50, "train.log_every": 100}


def shrink(src: Path, name: str, *, max_width: int = MAX_WIDTH) -> Path:
    """Copy a picture into ``docs/images/name``, at most ``max_width`` wide, palette-quantised."""
    from PIL import Image

    dst = IMAGES / name
    with Image.open(src) as im:
        if getattr(im, "n_frames", 1) > 1:  # an animation: fewer, smaller frames (noise does not compress)
            picks = sorted({round(i * (im.n_frames - 1) / (GIF_FRAMES - 1)) for i in range(GIF_FRAMES)})
            frames, durations = [], []
            for i in picks:
                im.seek(i)
                frame = im.convert("RGB")
                if frame.width > max_width:
                    frame = frame.resize((max_width, round(frame.height * max_width / frame.width)), Image.LANCZOS)
                frames.append(frame.quantize(colors=GIF_COLOURS, dither=Image.Dither.NONE))
                durations.append(im.info.get("duration", 350))
            frames[0].save(dst, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)
        else:
            rgb = im.convert("RGB")
            if rgb.width > max_width:
                rgb = rgb.resize((max_width, round(rgb.height * max_width / rgb.width)), Image.LANCZOS)
            rgb.quantize(colors=COLOURS).save(dst, optimize=True)
    return dst


def newest(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"no {pattern} in {folder}")
    return found[-1]


def train(work: Path, modality: str, extra: dict[str, object] | None = None) -> polydiff.TrainedRun:
    overrides = {**COMMON, "train.steps": STEPS[modality], "train.checkpoint_every": STEPS[modality], **(extra or {})}
    return polydiff.train(config_file=ROOT / "examples" / f"{modality}.toml", out=work / modality,
                          overrides=overrides, overwrite=True, progress=False)


def points(work: Path) -> list[Path]:
    run = polydiff.train("points", out=work / "points", overrides={
        **COMMON, "data.dataset": "ring", "train.steps": STEPS["points"], "train.batch_size": 512, "train.lr": 2e-3,
        "train.checkpoint_every": STEPS["points"], "model.width": 128, "model.depth": 3}, overwrite=True,
        progress=False)
    out = run.sample(n=2000, sampler="heun", steps=16, seed=0)
    png = [p for p in out.pictures if p.suffix == ".png"]
    return [shrink(png[0], "points-samples.png"), shrink(png[1], "points-trajectory.png")]


def image(work: Path) -> list[Path]:
    run = train(work, "image")
    cli(["sample", str(run.path), "--n", "64", "--cfg-scale", "2", "--seed", "0", "--animate", "--quiet"])
    samples = run.path / "samples"
    return [shrink(newest(samples, "*cfg2.png"), "image-samples.png"),
            shrink(newest(samples, "*-trajectory.gif"), "image-trajectory.gif", max_width=250)]


def video(work: Path) -> list[Path]:
    run = train(work, "video")
    run.impute(mask="future_frames", mask_options={"given": 2}, n=3, n_samples=2, seed=0)
    return [shrink(newest(run.path / "imputations", "*.png"), "video-prediction.png")]


def audio(work: Path) -> list[Path]:
    run = train(work, "audio")
    out = run.sample(n=16, cfg_scale=2.0, seed=0)
    picture = next(p for p in out.pictures if p.name.endswith("cfg2.png"))
    return [shrink(picture, "audio-spectrograms.png", max_width=900)]


def molecule(work: Path) -> list[Path]:
    run = train(work, "molecule")
    out = run.sample(n=16, seed=0)
    png = [p for p in out.pictures if p.suffix == ".png"]
    return [shrink(png[0], "molecule-grid.png"), shrink(png[1], "molecule-trajectory.png")]


def timeseries(work: Path) -> list[Path]:
    run = train(work, "timeseries")
    run.impute(mask="forecast", mask_options={"horizon": 6}, n=8, n_samples=30, sampler="dpmpp_2m", steps=20,
               seed=0)
    return [shrink(newest(run.path / "imputations", "*.png"), "timeseries-forecast.png")]


def compare(work: Path) -> list[Path]:
    grid = work / "grid.toml"
    grid.write_text("\n".join([
        "seeds = [0]", 'schedules = ["edm", { name = "vp_cosine" }]', 'parameterizations = ["edm"]',
        'weightings = ["edm", { kind = "min_snr", gamma = 5.0 }]', 'samplers = ["euler", "dpmpp_2m"]',
        "nfe = [4, 8, 16]", "n_samples = 500", "likelihood = 0", "",
        "[train]", "steps = 600", "max_minutes = 5", "batch_size = 256", "checkpoint_every = 600", "log_every = 50",
        "", "[modalities.points]", 'data = { dataset = "ring", n = 4096 }', "model = { width = 128, depth = 3 }",
        "train = { lr = 2e-3 }", ""]))
    cli(["compare", str(grid), "--out", str(work / "compare"), "--quiet"])
    return [shrink(work / "compare" / "plots" / "points.png", "compare-points.png")]


PARTS: dict[str, Callable[[Path], list[Path]]] = {
    "points": points, "image": image, "video": video, "audio": audio, "molecule": molecule,
    "timeseries": timeseries, "compare": compare}


def run_parts(names: list[str], work: Path) -> None:
    IMAGES.mkdir(exist_ok=True)
    rows = []
    for name in names:
        start = time.process_time()
        made = PARTS[name](work)
        rows.append((name, time.process_time() - start, made))
        print(f"{name}: {rows[-1][1]:.0f} CPU s -> " + ", ".join(f"{p.name} ({p.stat().st_size // 1024} kB)"
                                                              for p in made), flush=True)
    print(f"total: {sum(r[1] for r in rows):.0f} CPU s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help=f"comma-separated parts (default all: {','.join(PARTS)})")
    parser.add_argument("--work", type=Path, help="where the runs go (default: a temporary directory)")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(PARTS)
    unknown = sorted(set(names) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {list(PARTS)}")
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        run_parts(names, args.work)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run_parts(names, Path(tmp))
    shutil.rmtree(ROOT / "docs" / "__pycache__", ignore_errors=True)
