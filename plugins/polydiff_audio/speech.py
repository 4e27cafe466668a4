"""Spoken digits: real recordings (Asterisk's voice prompts, Debian packages) and a controllable
synthetic corpus (espeak-ng), both labelled 0-9. Nothing is downloaded."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .data import CODEC_OPTIONS, AudioDataset, codec_of, from_waves, read_notes
from .io import AudioError, read_audio

ASTERISK_ROOT = Path("/usr/share/asterisk/sounds")
# six distinct voices (the short names en, es, ... are symlinks to these): package that provides each
ASTERISK_VOICES = {
    "en_US_f_Allison": "asterisk-core-sounds-en-wav", "es_MX_f_Allison": "asterisk-core-sounds-es-wav",
    "fr_CA_f_June": "asterisk-core-sounds-fr-wav", "it_IT_m_Carlo": "asterisk-core-sounds-it-wav",
    "it_IT_f_Menardi": "asterisk-prompt-it-menardi-wav", "ru_RU_f_IvrvoiceRU": "asterisk-core-sounds-ru-wav",
}
DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _names(value: str, allowed: list[str] | None, what: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if allowed is not None:
        names = allowed if names == ["all"] else names
        bad = [v for v in names if v not in allowed]
        if bad:
            raise AudioError(f"unknown {what} {bad}; choose from: all, {', '.join(allowed)}")
    if not names:
        raise AudioError(f"give at least one {what}")
    return names


def load_asterisk_digits(*, voices: str = "all", root: str = str(ASTERISK_ROOT), **options: Any) -> AudioDataset:
    """Digits 0-9 spoken by up to six voices of Debian's Asterisk prompts (8 kHz, CC-BY-SA): 60 clips."""
    chosen = _names(voices, list(ASTERISK_VOICES), "Asterisk voice")
    codec, frames = codec_of({**CODEC_OPTIONS, **options})
    missing = [v for v in chosen if not (Path(root) / v / "digits" / "9.wav").is_file()]
    if missing:
        pkgs = " ".join(sorted({ASTERISK_VOICES[v] for v in missing}))
        raise AudioError(f"Asterisk digit prompts not found for {', '.join(missing)} under {root}; install them "
                         f"with `sudo apt-get install -y {pkgs}`")
    files = [(Path(root) / v / "digits" / f"{d}.wav", d) for v in chosen for d in range(10)]
    read = [read_audio(f, sample_rate=codec.sample_rate) for f, _ in files]
    return from_waves([w for w, _ in read], [d for _, d in files], [str(d) for d in range(10)], codec=codec,
                      frames=frames, key=f"asterisk:{','.join(chosen)}", names=[str(f) for f, _ in files],
                      source=f"asterisk_digits {','.join(chosen)}",
                      notes=read_notes([i for _, i in read], [f"{f.parent.parent.name}/{f.name}" for f, _ in files]))


def cache_dir() -> Path:
    """``$POLYDIFF_CACHE`` or ``~/.cache/polydiff``."""
    return Path(os.environ.get("POLYDIFF_CACHE") or Path.home() / ".cache" / "polydiff")


def synthesize(word: str, path: Path, *, voice: str, speed: int, pitch: int) -> Path:
    """``espeak-ng -v voice -s speed -p pitch -w path word`` (22.05 kHz WAV; byte-reproducible)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise AudioError("espeak-ng is not installed; install it with `sudo apt-get install -y espeak-ng`")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.wav")
    proc = subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(tmp), word],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 or not tmp.is_file():
        raise AudioError(f"espeak-ng failed for voice {voice!r} ({proc.stderr.strip() or proc.returncode}); "
                         "list voices with `espeak-ng --voices`")
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    return path


def load_espeak_digits(*, voices: str = "en-us,en-gb,en-gb-scotland,en-029", variants: str = "m1,m3,f2,f4",
                       speeds: str = "140,175,210", pitches: str = "35,50,65", **options: Any) -> AudioDataset:
    """Digits 0-9 synthesised by espeak-ng for every voice x variant x speed x pitch (default:
    4 x 4 x 3 x 3 = 144 clips per digit), cached as WAV under ``$POLYDIFF_CACHE/audio/espeak``."""
    codec, frames = codec_of({**CODEC_OPTIONS, **options})
    grid = list(itertools.product(_names(voices, None, "voice"), _names(variants, None, "variant"),
                                  [int(s) for s in _names(speeds, None, "speed")],
                                  [int(p) for p in _names(pitches, None, "pitch")]))
    from tqdm.auto import tqdm

    out = cache_dir() / "audio" / "espeak"
    files, labels = [], []
    todo = [(d, g) for d in range(10) for g in grid]
    for d, (voice, variant, speed, pitch) in tqdm(todo, desc="espeak-ng digits", unit="clip", leave=False,
                                                  disable=len(todo) < 200):
        f = out / DIGIT_WORDS[d] / f"{voice}+{variant}_s{speed}_p{pitch}.wav"
        if not f.is_file():
            synthesize(DIGIT_WORDS[d], f, voice=f"{voice}+{variant}", speed=speed, pitch=pitch)
        files.append(f)
        labels.append(d)
    read = [read_audio(f, sample_rate=codec.sample_rate) for f in files]
    key = f"espeak:{voices}:{variants}:{speeds}:{pitches}"
    return from_waves([w for w, _ in read], labels, [str(d) for d in range(10)], codec=codec, frames=frames,
                      key=key, names=[str(f) for f in files], source=f"espeak_digits {len(grid)} voicings",
                      notes=read_notes([i for _, i in read], [f"{f.parent.name}/{f.name}" for f in files]))


__all__ = ["ASTERISK_VOICES", "DIGIT_WORDS", "load_asterisk_digits", "load_espeak_digits", "synthesize"]
