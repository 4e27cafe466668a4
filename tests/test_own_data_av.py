"""Issue 18, a new user's audio and video files (benchmarks/own-data-runs.md): a corrupt file is counted
and named, not fatal; colour footage stays colour (or the summary says it was made grey); identity
metrics are skipped with a note on footage without classes; generated WAVs are never at full scale."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

soundfile = pytest.importorskip("soundfile")
iio = pytest.importorskip("imageio.v3")
pytest.importorskip("av")

from polydiff.app.cli import main  # noqa: E402
from polydiff_audio.data import load_folder  # noqa: E402
from polydiff_video.data import load_files, load_opencv_sample, read_video  # noqa: E402

RATE = 16000


def tone(freq: float, seconds: float = 0.5, amp: float = 0.4) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * RATE)) / RATE)


def voice_folder(root: Path, per_class: int = 2) -> Path:
    """``root/low`` and ``root/high``, ``per_class`` 16 kHz WAVs each."""
    for name, f0 in (("low", 220.0), ("high", 440.0)):
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            soundfile.write(str(root / name / f"{k}.wav"), tone(f0 + 15 * k), RATE, subtype="PCM_16")
    return root


def broken_mp3s(folder: Path) -> list[str]:
    """A random-bytes ``broken.mp3`` and a real MP3 cut to its first 100 bytes (``cut.mp3``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broken.mp3").write_bytes(np.random.default_rng(0).bytes(5000))
    soundfile.write(str(folder / "whole.mp3"), tone(300.0), RATE, format="MP3")
    (folder / "cut.mp3").write_bytes((folder / "whole.mp3").read_bytes()[:100])
    (folder / "whole.mp3").unlink()
    return ["broken.mp3", "cut.mp3"]


def test_a_corrupt_mp3_among_good_wavs_is_counted_and_named(tmp_path, capsys):
    root = voice_folder(tmp_path / "voice")
    broken_mp3s(root / "high")
    ds = load_folder(path=str(root))
    assert ds.labels is not None and ds.labels.tolist() == [0, 0, 1, 1]  # classes high, low: every good WAV kept
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("polydiff: ") and ds.load_summary in line
    assert "4 clips in 2 classes (high: 2, low: 2)" in line
    assert "2 files unreadable, not used: high/broken.mp3 (corrupt or truncated MP3 data" in line
    assert "high/cut.mp3 (corrupt or truncated MP3 data" in line


def test_a_click_too_short_to_encode_is_counted_and_short_clips_are_said_padded(tmp_path):
    root = voice_folder(tmp_path / "voice")
    soundfile.write(str(root / "low" / "click.wav"), tone(1000.0, seconds=0.01), RATE, subtype="PCM_16")
    ds = load_folder(path=str(root))  # 160 samples at 16 kHz -> 80 at 8 kHz: under the 512-sample window
    assert len(ds) == 4
    assert "1 files too short for the 512-sample window (data.n_fft), not used: low/click.wav (80 samples after " \
           "trimming silence)" in ds.load_summary
    # 0.5 s clips are shorter than the 64 frames (1.01 s) the model sees: padded, and the summary says so
    assert "0 clips longer than 64 frames (1.01 s) cropped to their start, 4 shorter ones padded (padded frames " \
           "are masked: never noised, trained on or scored)" in ds.load_summary
    assert int((ds.lengths < 64).sum()) == 4


def test_no_readable_audio_file_is_exit_code_2_naming_every_file_and_why(tmp_path, capfd):
    root = tmp_path / "calls"
    broken_mp3s(root / "yes")
    (root / "yes" / "empty.wav").write_bytes(b"")
    (root / "yes" / "noise.wav").write_bytes(np.random.default_rng(1).bytes(3000))
    out = tmp_path / "runs" / "calls"
    code = main(["train", "audio", "data.dataset=folder", f"data.path={root}", "--out", str(out), "--quiet"])
    err = capfd.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert err.count("\n") == 1 and "Trying to resync" not in err  # one line: the MP3 decoder's chatter is in it
    message = err.strip()
    assert message.startswith("polydiff: error: ") and "none of the 4 audio files could be used" in message
    assert ("yes/broken.mp3 (corrupt or truncated MP3 data, or not MP3 at all (MP3 decoder: 'Illegal "
            "Audio-MPEG-Header") in message and "yes/cut.mp3 (corrupt or truncated MP3 data" in message
    assert "yes/empty.wav (an empty file (0 bytes))" in message
    assert "yes/noise.wav (corrupt or truncated WAV data, or not WAV at all (libsndfile recognises no audio " \
           "format in it" in message
    # the convert hint names a tool that is installed, or both with how to install one
    if shutil.which("sox"):
        assert "`sox broken.mp3" in message
    elif shutil.which("ffmpeg"):
        assert "`ffmpeg -i broken.mp3" in message
    else:
        assert "`sox broken.mp3" in message and "`ffmpeg -i broken.mp3" in message and "apt-get install" in message
    assert not out.exists()


def test_generated_wavs_of_an_own_data_run_are_never_at_full_scale(tmp_path, capsys):
    root = voice_folder(tmp_path / "voice", per_class=5)
    run = tmp_path / "runs" / "voice"
    tiny = ["model.width=16", "model.depth=1", "train.steps=6", "train.batch_size=8", "train.checkpoint_every=6",
            "sample.sampler=euler", "sample.steps=3"]
    assert main(["train", "audio", "data.dataset=folder", f"data.path={root}", *tiny, "--out", str(run),
                 "--quiet"]) == 0
    assert main(["sample", str(run), "--n", "6", "--quiet"]) == 0
    wavs = sorted(run.glob("samples/*/*.wav"))
    assert len(wavs) == 6
    for p in wavs:
        pcm, rate = soundfile.read(str(p), dtype="int16")
        peak = int(np.abs(pcm.astype(np.int32)).max())
        assert rate == 8000 and 0 < peak < 32767, (p, peak)  # never clipped to full scale
        assert abs(20 * np.log10(peak / 32767) + 1.0) < 0.01  # peak-normalised to the stated -1 dBFS
    capsys.readouterr()


# ---- video ------------------------------------------------------------------------------------------

def moving_square(colour: tuple[int, int, int], background: tuple[int, int, int], n: int = 16) -> np.ndarray:
    frames = np.empty((n, 48, 64, 3), np.uint8)
    frames[:] = background
    for i in range(n):
        frames[i, 10 + i % 12:22 + i % 12, 4 + 2 * i:16 + 2 * i] = colour
    return frames


def footage(root: Path, *, colour: bool) -> Path:
    """``root/a.mp4`` (grey square on black) and, with ``colour``, ``root/b.mp4`` (red on blue) at 12 fps."""
    root.mkdir(parents=True, exist_ok=True)
    iio.imwrite(root / "a.mp4", moving_square((200, 200, 200), (0, 0, 0)), plugin="pyav", fps=12, codec="libx264")
    if colour:
        iio.imwrite(root / "b.mp4", moving_square((230, 30, 30), (20, 40, 160)), plugin="pyav", fps=12,
                    codec="libx264")
    return root


def test_colour_footage_stays_colour_by_default_and_grey_is_stated(tmp_path):
    clips = footage(tmp_path / "clips", colour=True)
    ds = load_files(path=str(clips), frames=4, size=16, stride=4)
    assert ds.x.shape[2] == 3 and ds.options["channels"] == 3
    red = ds.x[4:, :, 0].mean() - ds.x[4:, :, 2].mean()  # clips of b.mp4: more blue than red overall
    assert red < -0.2
    assert "RGB (data.channels=0: 1 of 2 source(s) have colour; data.channels=1 for grey)" in ds.summary
    assert "12 fps (the first video's rate), every frame kept" in ds.summary and ds.fps == 12
    assert "non-square frames (64x48) centre-cropped to a square, resized to 16x16" in ds.summary
    grey = load_files(path=str(clips), frames=4, size=16, stride=4, channels=1)
    assert grey.x.shape[2] == 1
    assert ("grey (data.channels=1: 1 colour source(s) converted to grey by luma: b.mp4; data.channels=3 keeps "
            "colour)") in grey.summary
    street = load_opencv_sample(path=str(clips / "b.mp4"), frames=4, size=16, every=2, stride=2)  # grey by default
    assert street.x.shape[2] == 1 and "1 frame in 2 kept (data.every), 6 fps" in street.summary
    assert "converted to grey by luma: b.mp4; data.channels=3 keeps colour" in street.summary


def test_grey_footage_is_read_as_grey_exactly_as_with_channels_1(tmp_path):
    clips = footage(tmp_path / "clips", colour=False)
    ds = load_files(path=str(clips), frames=4, size=16, stride=4)
    assert ds.x.shape[2] == 1 and "grey (data.channels=0: no source has colour)" in ds.summary
    direct = read_video(clips / "a.mp4", size=16, channels=1)
    assert (ds.x[0] - direct[:4]).abs().max() <= 1.01 / 127.5  # within one 8-bit level of the grey read


def test_identity_metrics_are_skipped_with_a_note_on_own_footage(tmp_path, capsys):
    clips = footage(tmp_path / "clips", colour=True)
    data = ["data.dataset=files", f"data.path={clips}", "data.frames=4", "data.size=8", "data.stride=2",
            "model.channels=8", "train.steps=2", "train.batch_size=4", "train.checkpoint_every=2"]
    run = tmp_path / "runs" / "cond"
    assert main(["train", "video", *data, "model.conditional=true", "train.conditional=true",
                 "train.mask_strategy=future_frames", "train.mask_options={given=0}", "--out", str(run),
                 "--quiet"]) == 0
    assert main(["impute", str(run), "--mask", "future_frames", "--mask-option", "given=2", "--n", "2",
                 "--n-samples", "2", "--steps", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "digit_identity: skipped: needs class-labelled clips (moving_digits: the digit); the 'files' clips " \
           "have no labels" in printed
    assert "UNRELIABLE" not in printed.split("digit_identity: ")[1].splitlines()[0]
    imputation = next((run / "imputations").glob("*.safetensors"))
    assert main(["evaluate", str(run), "--imputations", str(imputation), "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["digit_identity"] is None and res["mae"] > 0
    assert res["table"]["metrics"]["digit_identity"]["note"].startswith("skipped: needs class-labelled clips")
