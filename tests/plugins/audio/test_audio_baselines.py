"""Audio results beside their baselines on the same clips and masks (linear interpolation of the
log-mel spectrogram, repeat-last-frame; Gaussian fit and real clips for generation), and the WAVs of
`polydiff impute`."""

from __future__ import annotations

import json
import wave

import numpy as np

from polydiff.app.cli import main

TINY = ["data.n=32", "model.width=32", "model.depth=2", "train.steps=2", "train.batch_size=16",
        "train.checkpoint_every=2", "sample.n=8", "sample.steps=2", "sample.sampler=euler"]


def test_audio_evaluate_and_impute_print_baseline_rows_and_write_wavs(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "audio", *TINY, "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--likelihood-n", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    for label in ("gaussian_fit", "real_clips", "audio_fd [lower]", "spectrogram CNN: held-out accuracy"):
        assert label in out, label
    rows = {r["method"]: r["scores"] for r in json.loads((run / "eval.json").read_text())["table"]["rows"]}
    assert rows["real_clips"]["audio_fd"] < rows["model"]["audio_fd"]  # 2 steps of training are not real audio

    assert main(["impute", str(run), "--mask", "time_gap", "--mask-option", "ms=96", "--n", "4",
                 "--n-samples", "1", "--steps", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    for label in ("linear", "repeat_last_frame", "lsd_db [lower]"):
        assert label in out, label
    saved = json.loads((run / "eval-imputation.json").read_text())
    rows = {r["method"]: r["scores"] for r in saved["table"]["rows"]}
    # tones are smooth in time: interpolating across a 96 ms gap beats an untrained model
    assert rows["linear"]["lsd_db"] < rows["model"]["lsd_db"]
    wavs = sorted((run / "imputations").glob("*-clip*.wav"))
    assert len(wavs) == 2 * saved["n"] and any(w.stem.endswith("-truth") for w in wavs)
    with wave.open(str(wavs[0])) as f:
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16)
    assert f.getframerate() > 0 and 0 < np.abs(pcm).max() < 32767  # peak-normalised, never clipped
