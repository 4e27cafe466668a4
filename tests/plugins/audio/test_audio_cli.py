"""A tiny audio run through the CLI in-process: train -> sample (WAV + pictures) -> evaluate ->
impute a time gap -> evaluate the imputation."""

import json

import pytest
import soundfile

from polydiff.app.cli import main

TINY = ["data.n=32", "model.width=32", "model.depth=2", "model.class_cond=true", "train.steps=30",
        "train.batch_size=16", "train.log_every=10", "train.checkpoint_every=30", "sample.n=8", "sample.steps=4",
        "sample.sampler=euler"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tones"
    assert main(["train", "audio", *TINY, "--out", str(out), "--quiet"]) == 0
    return out


def test_sample_writes_wavs_and_spectrogram_pictures(run, capsys):
    assert main(["sample", str(run), "--cfg-scale", "1.5", "--quiet"]) == 0
    stem = next((run / "samples").glob("*.safetensors")).stem
    wavs = sorted((run / "samples" / stem).glob("*_label*.wav"))
    assert len(wavs) == 8
    info = soundfile.info(str(wavs[0]))
    assert info.samplerate == 8000 and 0.1 < info.duration <= 64 * 128 / 8000
    codec = json.loads((run / "samples" / stem / "codec.json").read_text())
    assert codec["hop"] == 128 and codec["n_mels"] == 32
    pngs = list((run / "samples").glob("*.png"))
    assert len(pngs) == 2 and all(p.stat().st_size > 2000 for p in pngs)  # samples + trajectory


def test_evaluate_reports_the_audio_metrics(run, capsys):
    assert main(["evaluate", str(run), "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["audio_fd"] > 0 and 0 <= res["audio_accuracy"] <= 1
    assert res["n"] == 8


def test_impute_a_time_gap_then_evaluate(run, capsys):
    assert main(["impute", str(run), "--mask", "time_gap", "--mask-option", "ms=96", "--n-samples", "2",
                 "--n", "3", "--steps", "3", "--quiet"]) == 0
    files = list((run / "imputations").glob("*.safetensors"))
    assert len(files) == 1 and (run / "imputations" / f"{files[0].stem}.png").is_file()
    capsys.readouterr()
    assert main(["evaluate", str(run), "--imputations", str(files[0]), "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["targets"] == 3 * 6 * 32  # 96 ms = 6 frames x 32 mel bins per clip
    assert res["lsd_db"] > 0 and res["spectral_convergence"] > 0 and res["mae"] > 0  # mae in dB


def test_unknown_mask_option_is_refused(run, capsys):
    assert main(["impute", str(run), "--mask", "time_gap", "--mask-option", "seconds=1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "seconds" in err and all(k in err for k in ("ms", "frames", "frame_ms")), err  # the bad key, the valid


def test_a_masked_conditional_model_trains_imputes_and_evaluates(tmp_path, capsys):
    out = tmp_path / "inpainter"
    args = [a for a in TINY if not a.startswith("model.class_cond")]
    assert main(["train", "audio", *args, "model.conditional=true", "train.conditional=true",
                 "train.mask_strategy=time_mixed", "train.mask_options={max_ms=160}", "--out", str(out),
                 "--quiet"]) == 0
    from polydiff.app.runs import Run

    train = Run.open(out).config.train
    assert train.mask_strategy == "time_mixed" and train.mask_options == {"max_ms": 160}
    assert main(["impute", str(out), "--mask", "time_gap", "--mask-option", "frames=5", "--n-samples", "2",
                 "--n", "3", "--steps", "3", "--quiet"]) == 0
    file = next((out / "imputations").glob("*.safetensors"))
    capsys.readouterr()
    assert main(["evaluate", str(out), "--imputations", str(file), "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["targets"] == 3 * 5 * 32 and res["lsd_db"] > 0
