"""The audio plugin through the conformance kit, its masks, metrics and data errors."""

import pytest
import torch

from polydiff import plugins
from polydiff.diffusion.imputation import Imputation
from polydiff.testing import check_backbone, check_modality
from polydiff_audio.data import load_tones
from polydiff_audio.io import AudioError
from polydiff_audio.masks import continuation, time_gap, time_mixed
from polydiff_audio.metrics import impute_lsd, impute_sc, linear_interpolation
from polydiff_audio.speech import load_asterisk_digits, load_espeak_digits

TINY = {"n": 24, "classes": 4}


@pytest.fixture(scope="module")
def tones():
    return load_tones(**TINY)


def test_modality_conforms():
    report = check_modality("audio", dataset_options=TINY)
    assert report["batch_shape"] == [4, 1, 32, 64] and report["metric"] == "audio_fd"
    assert report["metric_value"] >= 0


@pytest.mark.parametrize("name,options", [
    ("mel_conv1d", {"width": 32, "depth": 4, "class_cond": True}),
    ("mel_conv1d", {"width": 32, "depth": 2, "attention_every": 1, "conditional": True}),
    ("mel_unet", {"channels": 16, "class_cond": True}),
    ("mel_unet", {"channels": 8, "channel_mult": "1,2", "conditional": True}),
])
def test_backbones_conform_with_padding(tones, name, options):
    cond = None
    if options.get("conditional"):
        b = tones.get_batch(torch.arange(4))
        cond = {"x_cond": b.x * b.padding, "cond_mask": b.padding}
    report = check_backbone(plugins.get_backbone(name), tones, options=options, cond=cond)
    assert report["padding"] is not None and report["padding"] <= 1e-5  # tones differ in length


def test_time_gap_hides_a_gap_of_the_asked_length_inside_real_frames(tones):
    obs = tones.get_batch(torch.arange(8)).padding
    target = time_gap(obs, torch.Generator().manual_seed(0), ms=160.0)  # 160 ms = 10 frames of 16 ms
    assert (target <= obs).all()
    hidden = target.amax(dim=(1, 2))  # [B, T]
    assert (hidden.sum(dim=1) == 10).all()
    assert (target.sum(dim=(1, 2, 3)) == 10 * 32).all()  # every mel bin of each hidden frame
    t = torch.arange(obs.shape[-1])
    length = (obs.amax(dim=(1, 2)) > 0).sum(dim=1)
    first = torch.where(hidden > 0, t, 10**6).amin(dim=1)
    last = torch.where(hidden > 0, t, -1).amax(dim=1)
    assert (first >= 1).all() and (last <= length - 2).all() and torch.equal(last - first, torch.full_like(last, 9))
    again = time_gap(obs, torch.Generator().manual_seed(0), frames=10)
    assert torch.equal(again, target)  # ms and frames agree; the seed fixes the gap
    with pytest.raises(ValueError, match="shorter than one frame"):
        time_gap(obs, torch.Generator(), ms=5.0)
    with pytest.raises(ValueError, match=r"\[B, 1, n_mels, frames\]"):
        time_gap(obs[:, 0], torch.Generator())


def test_continuation_hides_the_end_of_each_clip(tones):
    obs = tones.get_batch(torch.arange(8)).padding
    target = continuation(obs, torch.Generator(), frames=5)
    length = (obs.amax(dim=(1, 2)) > 0).sum(dim=1)
    hidden = target.amax(dim=(1, 2))
    for i in range(8):
        assert hidden[i].nonzero().flatten().tolist() == list(range(int(length[i]) - 5, int(length[i])))


def test_time_mixed_draws_gaps_and_continuations_of_every_length_in_range(tones):
    obs = tones.get_batch(torch.arange(24)).padding
    obs = torch.cat([obs] * 8)  # 192 clips: every length and both kinds get drawn
    target = time_mixed(obs, torch.Generator().manual_seed(3), min_ms=48.0, max_ms=96.0, continuation=0.5)
    assert (target <= obs).all()
    hidden = target.amax(dim=(1, 2))  # [B, T]
    assert torch.equal(target.sum(dim=(1, 2, 3)), hidden.sum(dim=1) * 32)  # whole frames, every mel bin
    real = obs.amax(dim=(1, 2)) > 0
    length = real.sum(dim=1)
    t = torch.arange(obs.shape[-1])
    first = torch.where(hidden > 0, t, 10**6).amin(dim=1)
    last = torch.where(hidden > 0, t, -1).amax(dim=1)
    size = hidden.sum(dim=1)
    assert torch.equal(last - first + 1, size)  # one contiguous run per clip
    assert set(size.tolist()) == {3, 4, 5, 6}  # 48..96 ms of 16 ms frames, the clips are long enough
    tail = last == length - 1
    assert 0.35 < tail.float().mean() < 0.65  # about half are continuations
    assert (first[~tail] >= 1).all()  # gaps keep context on both sides
    again = time_mixed(obs, torch.Generator().manual_seed(3), min_ms=48.0, max_ms=96.0, continuation=0.5)
    assert torch.equal(again, target)
    with pytest.raises(ValueError, match="min_ms <= max_ms"):
        time_mixed(obs, torch.Generator(), min_ms=200.0, max_ms=100.0)


def test_impute_metrics_prefer_the_truth_and_beat_nothing(tones):
    b = tones.get_batch(torch.arange(6))
    target = time_gap(b.padding, torch.Generator().manual_seed(1), frames=6)
    given = b.padding - target
    perfect = Imputation(samples=b.x[:, None].repeat(1, 3, 1, 1, 1), truth=b.x, given=given, target=target,
                         padding=b.padding)
    assert impute_lsd(perfect, tones) == 0.0 and impute_sc(perfect, tones) == 0.0
    interp = linear_interpolation(b.x, given)
    assert torch.equal(interp * given, b.x * given)  # given entries untouched
    lin = Imputation(samples=interp[:, None], truth=b.x, given=given, target=target, padding=b.padding)
    silent = Imputation(samples=(b.x * given - target)[:, None], truth=b.x, given=given, target=target,
                        padding=b.padding)
    assert 0 < impute_lsd(lin, tones) < impute_lsd(silent, tones)


def test_linear_interpolation_is_exact_on_a_linear_ramp():
    ramp = torch.linspace(-1, 1, 20).repeat(2, 1, 3, 1)
    given = torch.ones_like(ramp)
    given[..., 5:12] = 0
    assert torch.allclose(linear_interpolation(ramp, given), ramp, atol=1e-6)


def test_debian_datasets_name_the_packages_when_missing(tmp_path, monkeypatch):
    with pytest.raises(AudioError, match="apt-get install -y asterisk-core-sounds-en-wav"):
        load_asterisk_digits(voices="en_US_f_Allison", root=str(tmp_path))
    with pytest.raises(AudioError, match="unknown Asterisk voice"):
        load_asterisk_digits(voices="klingon")
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng on the PATH
    with pytest.raises(AudioError, match="apt-get install -y espeak-ng"):
        load_espeak_digits(voices="en-us", variants="m1", speeds="175", pitches="50")


def test_espeak_corpus_is_cached_and_reproducible():
    import shutil

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    opts = {"voices": "en-us", "variants": "m1,f2", "speeds": "175", "pitches": "50"}
    a, b = load_espeak_digits(**opts), load_espeak_digits(**opts)
    assert len(a) == 20 and a.labels.tolist() == [d for d in range(10) for _ in range(2)]
    assert torch.equal(a.x, b.x)
