"""The load summary of video footage: one line saying what reading the user's files did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor


def footage_summary(name: str, root: Path, infos: list[dict[str, Any]], videos: list[tuple[str, Tensor]],
                    clips: int, *, colour: list[str], channels: int, chosen: int, frames: int, stride: int,
                    every: int, size: int, fps: float, rate: float, skipped: tuple[str, ...] | list[str] = ()) -> str:
    """The one-line load summary of footage ``name`` (a :mod:`polydiff_video.data` loader): sources, frames
    and sizes read, frame rate and frames kept, cropping and resizing, channels (what was converted and
    the option that keeps colour), frames left over, files skipped.

    ``infos``: per source, what :func:`~polydiff_video.data.read_video` noted; ``colour``: the sources
    with colour; ``channels``: as asked (0: inferred), ``chosen``: as loaded; ``fps``: as asked (0: the
    files'), ``rate``: as used."""
    dims = [i["size"] for i in infos if "size" in i]
    sizes = sorted({f"{w}x{h}" for w, h in dims})
    cropped = sorted({f"{w}x{h}" for w, h in dims if w != h})
    upscaled = sorted({f"{w}x{h}" for w, h in dims if min(w, h) < size})
    n = len(infos)
    rates = [i["fps"] for i in infos if i.get("fps")]
    if channels == 0:
        what = (f"RGB (data.channels=0: {len(colour)} of {n} source(s) have colour; data.channels=1 for grey)"
                if colour else "grey (data.channels=0: no source has colour)")
    elif chosen == 1 and colour:
        what = (f"grey (data.channels=1: {len(colour)} colour source(s) converted to grey by luma: "
                f"{_names(colour)}; data.channels=3 keeps colour)")
    elif chosen == 3 and not colour:
        what = "RGB (data.channels=3; no source has colour, so the 3 channels are equal)"
    else:
        what = f"{'grey' if chosen == 1 else 'RGB'} (data.channels={chosen})"
    timing = (f"{rate:g} fps" + (" (data.fps)" if fps else " (the first video's rate)" if rates else
                                 " (frame folders carry no rate; data.fps sets it)"))
    if len({round(r, 3) for r in rates}) > 1:
        timing += f"; the videos' rates differ ({', '.join(f'{r:g}' for r in sorted(set(rates)))} fps), not resampled"
    kept = "every frame kept" if every == 1 else f"1 frame in {every} kept (data.every), {rate / every:g} fps"
    unused = sum((len(v) - frames) % stride for _, v in videos)
    parts = [f"video '{name}': {n} source(s) from {root} ({sum(i.get('read', 0) for i in infos)} frames read, "
             f"sizes {', '.join(sizes)}) -> {clips} clip(s) of {frames} frames every {stride}",
             f"{timing}, {kept}",
             (f"non-square frames ({', '.join(cropped)}) centre-cropped to a square, " if cropped else "")
             + f"resized to {size}x{size} (area average)"
             + (f", upscaled from {', '.join(upscaled)}" if upscaled else ""),
             what, f"{unused} frame(s) at the ends of sources fill no clip"]
    if skipped:
        parts.append(f"{len(skipped)} file(s) not videos, skipped: {_names(skipped)}")
    return "; ".join(parts)


def _names(names: list[str] | tuple[str, ...], k: int = 5) -> str:
    return ", ".join(names[:k]) + (f" ... ({len(names) - k} more)" if len(names) > k else "")


__all__ = ["footage_summary"]
