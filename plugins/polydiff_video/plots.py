"""Pictures and files of clips: frame strips (one row per clip), denoising paths, frame prediction
(given vs predicted vs truth), animated GIFs and an MP4 grid (imageio + PyAV)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from polydiff import Batch
from polydiff_image.plots import tile, to_uint8

ROWS_MAX = 16  # clips shown per strip picture
SAVE_MAX = 64  # GIF files written by save_samples (the safetensors file keeps every clip)
GIF_SCALE = 4  # GIF / MP4 pixels per data pixel


def strips(clips: Tensor) -> np.ndarray:
    """``[N, T, C, H, W]`` -> one mosaic, a row of T frames per clip."""
    return tile(clips.reshape(-1, *clips.shape[2:]), cols=clips.shape[1])


def _figure(panels: list[tuple[str, np.ndarray]], path: Path, *, ncols: int | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = ncols or len(panels)
    nrows = -(-len(panels) // ncols)
    h, w = panels[0][1].shape[:2]
    scale = max(3.0, min(12.0, w / 20))
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows * h / w + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, m) in zip(axes.flat, panels, strict=False):
        ax.imshow(m[..., 0] if m.shape[-1] == 1 else m, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_samples(samples: Batch, reference: Batch | None, path: Path) -> None:
    """Frame strips (time left to right, one clip per row) of data beside samples."""
    panels = []
    if reference is not None:
        panels.append((f"data (first {min(len(reference), ROWS_MAX)} clips)", strips(reference.x[:ROWS_MAX])))
    label = samples.cond.get("label")
    x = samples.x[:ROWS_MAX]
    title = f"samples (first {len(x)} clips)"
    if label is not None:
        x = x[torch.argsort(label[:ROWS_MAX], stable=True)]
        title = title[:-1] + ", by label)"
    panels.append((title, strips(x)))
    _figure(panels, Path(path))


def plot_trajectory(frames: list[Batch], path: Path, *, steps: int = 6) -> None:
    """The denoising path of the first clip: one row per sampling step (noise at the top), its
    frames left to right."""
    pick = sorted({round(i * (len(frames) - 1) / (steps - 1)) for i in range(steps)}) if len(frames) > 1 else [0]
    rows = torch.stack([frames[i].x[0] for i in pick])
    _figure([(f"denoising path of clip 0: steps {', '.join(map(str, pick))} of {len(frames) - 1} (top to bottom)",
              strips(rows))], Path(path))


def plot_imputation(imputation: Any, path: Path, *, n: int = 4) -> None:
    """Frame prediction / interpolation for the first ``n`` clips: the truth, what the model was
    given (hidden frames grey), the per-pixel median of the samples and two single samples."""
    k = min(n, len(imputation.truth))
    truth = imputation.truth[:k]
    given = imputation.given[:k].to(truth.dtype)
    s = imputation.samples[:k]
    rows = [("truth", truth), ("given (hidden frames grey)", truth * given), ("median of samples", s.median(1).values)]
    rows += [(f"sample {j + 1}", s[:, j]) for j in range(min(2, s.shape[1]))]
    panels = [(f"clip {i}: " + ", ".join(t for t, _ in rows) + " (top to bottom)",
               strips(torch.stack([x[i] for _, x in rows]))) for i in range(k)]
    _figure(panels, Path(path), ncols=1)


def _frames_of(clip: Tensor, scale: int = GIF_SCALE) -> np.ndarray:
    """``[T, C, H, W]`` -> uint8 ``[T, H*scale, W*scale, 3]`` (nearest-neighbour upscaling)."""
    u = to_uint8(clip).repeat(scale, axis=1).repeat(scale, axis=2)
    return np.repeat(u, 3, axis=-1) if u.shape[-1] == 1 else u


def save_gif(clip: Tensor, path: Path, *, fps: float = 5.0) -> Path:
    """One clip ``[T, C, H, W]`` as a looping GIF."""
    from PIL import Image

    ims = [Image.fromarray(f) for f in _frames_of(clip)]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=round(1000 / fps), loop=0)
    return Path(path)


def save_mp4(clips: Tensor, path: Path, *, fps: float = 5.0, cols: int = 8) -> Path:
    """A grid of clips ``[N, T, C, H, W]`` as one H.264 MP4 (imageio + PyAV)."""
    import imageio.v3 as iio

    grids = [tile(clips[:, t], cols=min(cols, len(clips))) for t in range(clips.shape[1])]
    frames = np.stack([np.repeat(g, 3, axis=-1) if g.shape[-1] == 1 else g for g in grids])
    frames = frames.repeat(GIF_SCALE, axis=1).repeat(GIF_SCALE, axis=2)
    frames = frames[:, :frames.shape[1] // 2 * 2, :frames.shape[2] // 2 * 2]  # H.264 needs even sides
    iio.imwrite(path, frames, plugin="pyav", codec="libx264", fps=max(1, round(fps)))
    return Path(path)


def save_samples(samples: Batch, directory: Path, *, fps: float = 5.0) -> list[Path]:
    """GIFs ``<i>[_label<k>].gif`` of the first 64 clips and ``grid.mp4`` of them side by side."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    label = samples.cond.get("label")
    paths = []
    for i, clip in enumerate(samples.x[:SAVE_MAX]):
        name = f"{i:04d}" + (f"_label{int(label[i])}" if label is not None else "") + ".gif"
        paths.append(save_gif(clip, directory / name, fps=fps))
    paths.append(save_mp4(samples.x[:SAVE_MAX], directory / "grid.mp4", fps=fps))
    return paths


__all__ = ["plot_imputation", "plot_samples", "plot_trajectory", "save_gif", "save_mp4", "save_samples", "strips"]
