"""Pictures of images: sample grids, denoising strips, inpainting before/after, PNG and GIF files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from polydiff import Batch

GRID_MAX = 64  # images shown per grid panel
SAVE_MAX = 256  # PNG files written by save_samples (the safetensors file keeps them all)


def to_uint8(x: Tensor) -> np.ndarray:
    """``[..., C, H, W]`` in [-1, 1] -> ``[..., H, W, C]`` uint8 (values outside are clipped)."""
    y = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return y.movedim(-3, -1).numpy()


def tile(x: Tensor, cols: int | None = None, pad: int = 1) -> np.ndarray:
    """``[N, C, H, W]`` -> one ``[rows*(H+pad), cols*(W+pad), C]`` uint8 mosaic (white gaps)."""
    n, c, h, w = x.shape
    cols = cols or max(1, int(np.ceil(np.sqrt(n))))
    rows = int(np.ceil(n / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i, img in enumerate(to_uint8(x)):
        r, k = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = img
    return out


def _show(ax: Any, mosaic: np.ndarray, title: str) -> None:
    ax.imshow(mosaic[..., 0] if mosaic.shape[-1] == 1 else mosaic, cmap="gray", vmin=0, vmax=255,
              interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _figure(panels: list[tuple[str, np.ndarray]], path: Path, *, ncols: int | None = None,
            scale: float = 4.0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = ncols or len(panels)
    nrows = (len(panels) + ncols - 1) // ncols
    aspect = panels[0][1].shape[0] / panels[0][1].shape[1]
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows * aspect + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, mosaic) in zip(axes.flat, panels, strict=False):
        ax.axis("on")
        _show(ax, mosaic, title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _by_label(batch: Batch) -> Tensor:
    """Samples sorted by requested class (rows of a grid then read as classes)."""
    label = batch.cond.get("label")
    x = batch.x[:GRID_MAX]
    if label is None:
        return x
    order = torch.argsort(label[:GRID_MAX], stable=True)
    return x[order]


def plot_samples(samples: Batch, reference: Batch | None, path: Path) -> None:
    """A grid of (up to 64) samples, sorted by requested label, beside as many reference images."""
    panels = []
    if reference is not None:
        panels.append((f"data (n={min(len(reference), GRID_MAX)})", tile(reference.x[:GRID_MAX])))
    title = "samples" + (" by label" if "label" in samples.cond else "")
    panels.append((f"{title} (n={min(len(samples), GRID_MAX)})", tile(_by_label(samples))))
    _figure(panels, Path(path))


def _pick(frames: list[Any], k: int) -> list[int]:
    return sorted({round(i * (len(frames) - 1) / (k - 1)) for i in range(k)}) if len(frames) > 1 else [0]


def plot_trajectory(frames: list[Batch], path: Path, *, n: int = 8, steps: int = 8) -> None:
    """Strip of the denoising path: one row per sample (first ``n``), noise (left) to image (right).
    Each frame is shown clipped to [-1, 1], so early frames look like noise at full contrast."""
    pick = _pick(frames, steps)
    rows = [torch.stack([frames[i].x[j] for i in pick]) for j in range(min(n, len(frames[-1].x)))]
    strip = tile(torch.cat(rows), cols=len(pick))
    _figure([(f"denoising path: steps {', '.join(map(str, pick))} of {len(frames) - 1}", strip)], Path(path),
            scale=1.0 * len(pick))


def save_trajectory_gif(frames: list[Batch], path: Path, *, n: int = 16, duration_ms: int = 80) -> Path:
    """An animated GIF of the denoising path of the first ``n`` samples (a grid per frame)."""
    from PIL import Image

    ims = []
    for f in frames:
        m = tile(f.x[:n])
        ims.append(Image.fromarray(m[..., 0] if m.shape[-1] == 1 else m).resize(
            (m.shape[1] * 4, m.shape[0] * 4), Image.Resampling.NEAREST))
    path = Path(path)
    ims[0].save(path, save_all=True, append_images=ims[1:] + [ims[-1]] * 10, duration=duration_ms, loop=0)
    return path


def save_samples(samples: Batch, directory: Path) -> list[Path]:
    """PNG files ``<i>[_label<k>].png`` of the first 256 samples (all stay in the safetensors file)."""
    from PIL import Image

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    label = samples.cond.get("label")
    paths = []
    for i, img in enumerate(to_uint8(samples.x[:SAVE_MAX])):
        name = f"{i:04d}" + (f"_label{int(label[i])}" if label is not None else "") + ".png"
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(directory / name)
        paths.append(directory / name)
    return paths


def plot_imputation(imputation: Any, path: Path, *, n: int = 8) -> None:
    """Inpainting before/after for the first ``n`` items: truth, what the model was given (hidden
    pixels grey), the per-pixel median of the samples, and up to three single samples."""
    truth = imputation.truth[:n]
    given = imputation.given[:n].to(truth.dtype)
    shown = truth * given + 0.0 * (1 - given)  # hidden pixels at mid-grey (0 in [-1, 1])
    s = imputation.samples[:n]
    rows = [("truth", truth), ("given", shown), ("median of samples", s.median(dim=1).values)]
    rows += [(f"sample {k + 1}", s[:, k]) for k in range(min(3, s.shape[1]))]
    panels = [(title, tile(x, cols=len(truth))) for title, x in rows]
    _figure(panels, Path(path), ncols=1, scale=max(4.0, 1.0 * len(truth)))


def plot_super_resolution(lowres: Tensor, bicubic: Tensor, samples: Tensor, truth: Tensor, path: Path, *,
                          n: int = 8) -> None:
    """Super-resolution side by side for the first ``n`` images: the low-resolution input (nearest
    upsampling, so its pixels show), bicubic upsampling (the baseline), the model's sample and the truth."""
    size = tuple(truth.shape[-2:])
    nearest = torch.nn.functional.interpolate(lowres[:n].float(), size=size, mode="nearest")
    rows = [("low-resolution input", nearest), ("bicubic", bicubic[:n]), ("diffusion sample", samples[:n]),
            ("truth", truth[:n])]
    _figure([(title, tile(x, cols=min(n, len(x)))) for title, x in rows], Path(path), ncols=1,
            scale=max(4.0, 1.0 * min(n, len(truth))))


__all__ = ["plot_imputation", "plot_samples", "plot_super_resolution", "plot_trajectory", "save_samples",
           "save_trajectory_gif", "tile", "to_uint8"]
