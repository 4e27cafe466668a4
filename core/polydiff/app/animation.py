"""The denoising trajectory as an animation, for any modality: each frame is the modality's own
picture of the samples at one noise level (``plot_samples``), from pure noise to data. Watching noise
turn into digits, molecules or series is how most people first understand diffusion."""

from __future__ import annotations

import tempfile
from pathlib import Path

from polydiff.diffusion.state import Batch
from polydiff.plugins.specs import ModalitySpec

MAX_SAMPLES = 16  # samples shown per frame: enough to see variety, small enough to read


def animate_trajectory(modality: ModalitySpec, frames: list[Batch], path: str | Path, *, max_frames: int = 16,
                       seconds_per_frame: float = 0.35, hold_last: float = 2.0) -> Path:
    """Write a GIF of ``frames`` (batches from noise to data) drawn by ``modality.plot_samples``.

    Args:
        modality: whose ``plot_samples(samples, None, png)`` draws each frame.
        frames: the sampling trajectory (e.g. ``SampleResult.trajectory`` wrapped in batches).
        max_frames: frames kept, evenly spaced, always including the first (noise) and the last (data).
        seconds_per_frame, hold_last: display times; the final frame stays longer.
    """
    if modality.plot_samples is None:
        raise ValueError(f"modality {modality.name!r} has no plot_samples to draw animation frames with")
    if len(frames) < 2:
        raise ValueError(f"an animation needs at least 2 trajectory frames, got {len(frames)}")
    from PIL import Image

    count = min(max_frames, len(frames))
    picks = sorted({round(i * (len(frames) - 1) / (count - 1)) for i in range(count)})
    images = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, i in enumerate(picks):
            f = frames[i]
            n = min(MAX_SAMPLES, len(f))
            sub = Batch(x=f.x[:n], padding=None if f.padding is None else f.padding[:n],
                        cond={key: v[:n] for key, v in f.cond.items()})
            png = Path(tmp) / f"{k:03d}.png"
            modality.plot_samples(sub, None, png)
            with Image.open(png) as im:
                images.append(im.convert("RGB").copy())
    size = images[0].size
    images = [im if im.size == size else im.resize(size) for im in images]
    durations = [int(1000 * seconds_per_frame)] * (len(images) - 1) + [int(1000 * hold_last)]
    path = Path(path)
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


__all__ = ["animate_trajectory"]
