"""Audio people can listen to and look at: WAV files of samples, spectrogram pictures of data vs
samples, one spectrogram's denoising path, inpainting before / after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor

from polydiff import Batch

from .io import WRITE_PEAK_DBFS, write_wav
from .spectrogram import MelCodec

SAVE_MAX = 64  # WAV files written by save_samples (the safetensors file keeps every sample)
GRID_MAX = 16  # spectrograms per picture panel
_CODECS: dict[int, MelCodec] = {}  # n_mels -> codec of the audio dataset loaded last (for save_samples)


def remember_codec(codec: MelCodec) -> None:
    """Record the codec of a loaded dataset: ``save_samples`` receives only the samples, so it decodes
    them with the codec of the last dataset of the same ``n_mels`` (the run's: workflows load it first)."""
    _CODECS[codec.n_mels] = codec


def codec_for(n_mels: int) -> MelCodec:
    return _CODECS.get(n_mels) or MelCodec(n_mels=n_mels)


def real_frames(x: Tensor, padding: Tensor | None) -> list[Tensor]:
    """Each clip ``[n_mels, frames_i]`` cropped to its real frames."""
    if padding is None:
        return [xi[0] for xi in x]
    lengths = (padding.amax(dim=(1, 2)) > 0).sum(dim=1)
    return [xi[0, :, : int(k)] for xi, k in zip(x, lengths, strict=True)]


def save_samples(samples: Batch, directory: Path) -> list[Path]:
    """``<i>[_label<k>].wav`` for the first 64 samples (Griffin-Lim, each peak-normalised to
    :data:`~polydiff_audio.io.WRITE_PEAK_DBFS` dBFS, so nothing is clipped), and ``codec.json`` saying how."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    codec = codec_for(int(samples.x.shape[2]))
    label = samples.cond.get("label")
    paths = []
    for i, spec in enumerate(real_frames(samples.x[:SAVE_MAX], None if samples.padding is None
                                         else samples.padding[:SAVE_MAX])):
        name = f"{i:04d}" + (f"_label{int(label[i])}" if label is not None else "") + ".wav"
        paths.append(write_wav(directory / name, codec.decode(spec, seed=i), codec.sample_rate,
                               peak_dbfs=WRITE_PEAK_DBFS))
    meta = {k: getattr(codec, k) for k in ("sample_rate", "n_fft", "hop", "n_mels", "db_min", "db_max",
                                           "griffin_lim_iters")}
    meta["peak_dbfs"] = WRITE_PEAK_DBFS
    (directory / "codec.json").write_text(json.dumps(meta, indent=2) + "\n")
    return [*paths, directory / "codec.json"]


Row = tuple[str, list[Tensor]] | tuple[str, list[Tensor], list[str]]


def _figure(rows: list[Row], path: Path, *, cols: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), cols, figsize=(1.6 * cols + 0.5, 1.5 * len(rows) + 0.3), squeeze=False)
    for r, row in enumerate(rows):
        title, specs = row[0], row[1]
        names = row[2] if len(row) > 2 else []
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(specs):
                ax.imshow(specs[c].detach().float().cpu().clamp(-1, 1).numpy(), origin="lower", aspect="auto",
                          cmap="magma", vmin=-1, vmax=1, interpolation="nearest")
            else:
                ax.axis("off")
            if c < len(names):
                ax.set_title(names[c], fontsize=7)
            if c == 0:
                ax.set_ylabel(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _titled(batch: Batch, what: str, k: int) -> list[Row]:
    specs = real_frames(batch.x[:k], None if batch.padding is None else batch.padding[:k])
    label = batch.cond.get("label")
    per_row = 8
    rows: list[Row] = []
    for r in range(0, len(specs), per_row):
        names = [] if label is None else [f"label {int(v)}" for v in label[r:r + per_row]]
        rows.append((what, specs[r:r + per_row], names))
    return rows


def plot_samples(samples: Batch, reference: Batch | None, path: Path) -> None:
    """Log-mel spectrograms (time right, mel up) of reference clips above samples, 16 of each."""
    rows = (_titled(reference, "data", GRID_MAX) if reference is not None else []) + _titled(samples, "samples",
                                                                                             GRID_MAX)
    _figure(rows, Path(path), cols=8)


def plot_trajectory(frames: list[Batch], path: Path, *, steps: int = 8, n: int = 2) -> None:
    """The denoising path of the first ``n`` spectrograms, noise (left) to sample (right)."""
    pick = sorted({round(i * (len(frames) - 1) / (steps - 1)) for i in range(steps)}) if len(frames) > 1 else [0]
    rows: list[Row] = []
    for j in range(min(n, len(frames[-1].x))):
        shown = []
        for i in pick:
            pad = frames[i].padding
            shown.append(real_frames(frames[i].x[j:j + 1], None if pad is None else pad[j:j + 1])[0])
        rows.append((f"clip {j}", shown, [f"step {i}/{len(frames) - 1}" for i in pick]))
    _figure(rows, Path(path), cols=len(pick))


def plot_imputation(imputation: Any, path: Path, *, n: int = 6) -> None:
    """Inpainting / continuation of the first ``n`` clips: truth, what was given (hidden frames at
    silence), the sample median and two single samples (columns: clips)."""
    k = min(n, len(imputation))
    pad = None if imputation.padding is None else imputation.padding[:k]
    given = imputation.given[:k].to(imputation.truth.dtype)
    shown = imputation.truth[:k] * given - (1 - given)
    s = imputation.samples[:k]
    rows = [("truth", imputation.truth[:k]), ("given", shown), ("median", s.median(dim=1).values)]
    rows += [(f"sample {j + 1}", s[:, j]) for j in range(min(2, s.shape[1]))]
    _figure([(t, real_frames(x, pad)) for t, x in rows], Path(path), cols=k)


__all__ = ["codec_for", "plot_imputation", "plot_samples", "plot_trajectory", "real_frames", "remember_codec",
           "save_samples"]
