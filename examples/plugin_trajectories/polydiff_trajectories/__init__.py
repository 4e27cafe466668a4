"""A new data type for polydiff in one file: 2-D trajectories, ``[B, T, 2]`` paths of T points.

The data are Lissajous curves ``(a sin(f1 t + p), b sin(f2 t))`` with three frequency ratios as
classes (ellipse 1:1, figure-eight 1:2, pretzel 3:2), random amplitudes and phases. The plugin
registers a modality, a dataset, a 1-D convolutional backbone, a metric and a mask strategy,
through the same hooks as the first-party plugins; everything else (schedules, samplers, training,
CFG, imputation, comparison grids) comes from the core.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn

from polydiff import ArrayDataset, Batch, DiffusionDataset, Field, StateSpec
from polydiff.nn import FourierEmbedding, LabelEmbedding
from polydiff.plugins import (
    BackboneSpec,
    DatasetSpec,
    MaskStrategySpec,
    MetricSpec,
    ModalitySpec,
    SpecPlugin,
)

RATIOS = ((1, 1), (1, 2), (3, 2))  # class k: frequencies (f1, f2)


def load_lissajous(*, n: int = 3000, length: int = 32, seed: int = 0) -> ArrayDataset:
    """``n`` curves of ``length`` points, labels 0-2 by frequency ratio, reproducible from ``seed``."""
    if n < 1 or length < 4:
        raise ValueError(f"need n >= 1 and length >= 4, got n={n}, length={length}")
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(len(RATIOS), (n,), generator=g)
    f = torch.tensor(RATIOS, dtype=torch.float32)[labels]  # [n, 2]
    amp = 0.6 + 0.4 * torch.rand(n, 2, generator=g)
    phase = 2 * math.pi * torch.rand(n, 1, generator=g)
    t = torch.linspace(0, 2 * math.pi, length)
    x = amp[:, :1] * torch.sin(f[:, :1] * t + phase)
    y = amp[:, 1:] * torch.sin(f[:, 1:] * t)
    paths = torch.stack([x, y], dim=-1)  # [n, T, 2]
    return ArrayDataset(StateSpec((Field("x", (length, 2)),)), paths, labels=labels, num_classes=len(RATIOS))


class PathNet(nn.Module):
    """A 1-D convolutional net over time (channels = the 2 coordinates), conditioned on the noise
    level and optionally a class label (-1 = none, for classifier-free guidance)."""

    def __init__(self, *, width: int = 64, depth: int = 4, num_classes: int | None = None) -> None:
        super().__init__()
        self.noise = FourierEmbedding(width)
        self.label = LabelEmbedding(num_classes, width) if num_classes else None
        self.inp = nn.Conv1d(2, width, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Conv1d(width, width, 5, padding=2) for _ in range(depth))
        self.out = nn.Conv1d(width, 2, 3, padding=1)

    def forward(self, x: Tensor, c_noise: Tensor, *, label: Tensor | None = None, **_: Tensor) -> Tensor:
        emb = self.noise(c_noise)
        if self.label is not None and label is not None:
            emb = emb + self.label(label)
        h = self.inp(x.transpose(1, 2)) + emb[:, :, None]
        for block in self.blocks:
            h = h + block(nn.functional.silu(h))
        return self.out(nn.functional.silu(h)).transpose(1, 2)


def build_pathnet(dataset: DiffusionDataset, *, width: int = 64, depth: int = 4,
                  class_cond: bool = False) -> nn.Module:
    return PathNet(width=width, depth=depth, num_classes=dataset.num_classes if class_cond else None)


def roughness_gap(samples: Batch, reference: DiffusionDataset) -> float:
    """|log| of the ratio of mean squared second differences (samples vs data): 0 when samples are
    as smooth as the data, large for jagged (undertrained or too-few-steps) paths."""
    ref = reference.get_batch(torch.arange(min(len(reference), len(samples)))).x

    def rough(p: Tensor) -> float:
        return float((p[:, 2:] - 2 * p[:, 1:-1] + p[:, :-2]).pow(2).mean())

    return abs(math.log(rough(samples.x) / rough(ref)))


def last_points(observed: Tensor, generator: torch.Generator, *, count: int = 8) -> Tensor:
    """Hide the last ``count`` points of every path: "continue this trajectory"."""
    target = torch.zeros_like(observed)
    target[:, -count:] = 1
    return target * observed


def plot_paths(samples: Batch, reference: Batch | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ([("data", reference.x)] if reference is not None else []) + [("samples", samples.x)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    for ax, (title, paths) in zip(axes[0], panels, strict=True):
        for p in paths[:24]:
            ax.plot(p[:, 0], p[:, 1], lw=1)
        ax.set(title=title, aspect="equal", xlim=(-1.3, 1.3), ylim=(-1.3, 1.3))
    fig.savefig(path, dpi=80)
    plt.close(fig)


MODALITIES = [ModalitySpec(name="trajectories", description="2-D paths of T points (Lissajous curves)",
                           default_dataset="lissajous", default_backbone="pathnet", primary_metric="sliced_w2",
                           plot_samples=plot_paths)]
DATASETS = [DatasetSpec(name="lissajous", modality="trajectories", build=load_lissajous,
                        description="Lissajous curves, 3 classes by frequency ratio")]
BACKBONES = [BackboneSpec(name="pathnet", modality="trajectories", build=build_pathnet,
                          description="1-D convolutions over time")]
METRICS = [MetricSpec(name="roughness_gap", modality="trajectories", fn=roughness_gap, direction="lower",
                      description="|log ratio| of the mean squared second difference, samples vs data")]
MASK_STRATEGIES = [MaskStrategySpec(name="last_points", fn=last_points,
                                    description="hide the last `count` points of each path (continuation)")]

# what this plugin provides: the lists above, read by the host when a registry is first used
polydiff_plugin = SpecPlugin(registry=__name__)
