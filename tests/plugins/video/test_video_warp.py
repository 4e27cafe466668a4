"""The ``warp`` head: predicted frames as mixtures of translations of the latest given frame."""

import pytest
import torch

from polydiff.app.cli import main
from polydiff.testing import check_backbone
from polydiff_video.backbone import VideoUNet, build_video_unet
from polydiff_video.data import load_moving_digits
from polydiff_video.motion import translate
from polydiff_video.warp import PARAM_SCALE, TranslationMixture


def _clip(t: int = 5) -> torch.Tensor:
    """One clip ``[1, T, 1, 12, 12]`` in [-1, 1]: a random blob moving by (1, -1) px per frame on black."""
    g = torch.Generator().manual_seed(0)
    frame = torch.zeros(1, 1, 12, 12)
    frame[:, :, 3:7, 4:8] = torch.rand(1, 1, 4, 4, generator=g) + 0.2
    return torch.stack([translate(frame, torch.tensor([[k, -k]])) for k in range(t)], dim=1) * 2 - 1


def _sharp(radius: int) -> TranslationMixture:
    head = TranslationMixture(radius)
    with torch.no_grad():  # a near-zero temperature and a gate of ~1: pick the nearest translation
        head.log_tau.copy_(torch.tensor([-12.0, 0.0]) / PARAM_SCALE)
        head.gate.copy_(torch.tensor([30.0, 0.0]) / PARAM_SCALE)
    return head


def test_sharp_head_turns_a_rough_guess_into_the_exact_moved_frame():
    clip = _clip()
    mask = torch.zeros_like(clip)
    mask[:, :2] = 1
    rough = clip + 0.3 * torch.randn(clip.shape, generator=torch.Generator().manual_seed(1))
    out = _sharp(3)(rough, clip * mask, mask, torch.zeros(1))
    # frames 2..4 are frame 1 moved by (1, -1), (2, -2), (3, -3): rebuilt pixel for pixel
    torch.testing.assert_close(out[:, 2:], clip[:, 2:])
    torch.testing.assert_close(out[:, :2], rough[:, :2])  # given frames keep the net's output


def test_frames_before_the_first_given_frame_keep_the_guess_and_hidden_values_are_never_read():
    clip = _clip()
    mask = torch.zeros_like(clip)
    mask[:, 2] = 1
    guess = torch.randn(clip.shape, generator=torch.Generator().manual_seed(2))
    head = _sharp(3)
    out = head(guess, clip * mask, mask, torch.zeros(1))
    torch.testing.assert_close(out[:, :3], guess[:, :3])
    assert not torch.allclose(out[:, 3:], guess[:, 3:])
    leaked = head(guess, clip, mask, torch.zeros(1))  # hidden values in x_cond: masked out before use
    torch.testing.assert_close(leaked, out)


def test_a_soft_head_mixes_translations_and_learns_its_temperature_and_gate():
    clip = _clip()
    mask = torch.zeros_like(clip)
    mask[:, :2] = 1
    head = TranslationMixture(2)  # initial gate 0.95: mostly the mixture
    guess = torch.zeros_like(clip, requires_grad=True)
    weights = torch.softmax(-head.distances(clip[0, 1:2], guess[0, 2:3].detach()) / torch.exp(torch.tensor(-3.0)), -1)
    assert int((weights > 0.01).sum()) > 3  # at first a spread over several translations, not a pick
    out = head(guess, clip * mask, mask, torch.full((1,), 0.5))
    assert out[:, 2:].min() >= -1 and out[:, 2:].max() <= 1
    (out - clip)[:, 2:].square().mean().backward()
    assert head.log_tau.grad is not None and head.log_tau.grad.abs().sum() > 0
    assert head.gate.grad is not None and head.gate.grad.abs().sum() > 0
    assert guess.grad is not None and guess.grad[:, 2:].abs().sum() > 0


def test_partly_given_frames_are_predicted_not_used_as_sources():
    clip = _clip()
    guess = torch.randn(clip.shape, generator=torch.Generator().manual_seed(4))
    pixels = (torch.rand(clip.shape, generator=torch.Generator().manual_seed(5)) < 0.5).float()
    head = _sharp(3)
    torch.testing.assert_close(head(guess, clip * pixels, pixels, torch.zeros(1)), guess)  # no whole frame
    mask = torch.zeros_like(clip)
    mask[:, :2] = 1
    mask[:, 2, :, :6] = 1  # frame 2 half given: predicted from frame 1, not a source for frame 3
    out = head(clip, clip * mask, mask, torch.zeros(1))
    torch.testing.assert_close(out[:, 2:], clip[:, 2:])


def test_video_unet_warp_option_checks_and_shapes():
    with pytest.raises(ValueError, match="needs conditional = true"):
        VideoUNet(frames=4, in_channels=1, resolution=(8, 8), channels=8, channel_mult=1, warp=2)
    with pytest.raises(ValueError, match="must be >= 0"):
        VideoUNet(frames=4, in_channels=1, resolution=(8, 8), channels=8, channel_mult=1, conditional=True, warp=-1)
    with pytest.raises(ValueError, match="radius must be >= 1"):
        TranslationMixture(0)
    net = VideoUNet(frames=4, in_channels=1, resolution=(8, 8), channels=8, channel_mult=1, conditional=True, warp=2)
    x = torch.randn(3, 4, 1, 8, 8)
    mask = torch.zeros_like(x)
    mask[:, :2] = 1
    out = net(x, torch.zeros(3), x_cond=x * mask, cond_mask=mask)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert net.required_parameterization is not None and net.required_parameterization[0] == "x0"
    with torch.no_grad():  # a sharp head: each predicted frame is exactly one translation of frame 1
        net.warp_head.log_tau.copy_(torch.tensor([-12.0, 0.0]) / PARAM_SCALE)
        net.warp_head.gate.copy_(torch.tensor([30.0, 0.0]) / PARAM_SCALE)
        out = net(x, torch.zeros(3), x_cond=x * mask, cond_mask=mask)
    moved = net.warp_head._padded(x[:, 1]).unfold(2, 8, 1).unfold(3, 8, 1)  # [3, 1, 5, 5, 8, 8]: every translation
    for i in range(3):
        for frame in (2, 3):
            gaps = (moved[i, 0] - out[i, frame, 0]).abs().amax((-2, -1))
            assert float(gaps.min()) < 1e-4


def test_warp_backbone_conforms():
    ds = load_moving_digits(n=8, frames=4, size=16, digit_size=8)
    net = build_video_unet(ds, conditional=True, warp=3, channels=8, channel_mult="1,2")
    b = ds.get_batch(torch.arange(2))
    mask = torch.zeros_like(b.x)
    mask[:, :2] = 1
    check_backbone(net, b, cond={"x_cond": b.x * mask, "cond_mask": mask})


CLI = ["video", "data.n=24", "data.frames=4", "model.channels=8", "model.context=2", "model.conditional=true",
       "model.warp=3", "train.conditional=true", "train.mask_strategy=future_frames", "train.mask_options.given=2",
       "train.batch_size=4", "train.steps=3", "train.checkpoint_every=3", "--quiet"]


def test_cli_warp_needs_x0_and_then_trains_and_predicts(tmp_path, capsys):
    assert main(["train", *CLI, "--out", str(tmp_path / "edm")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and 'model.parameterization = "x0"' in err.strip().splitlines()[-1]
    assert main(["train", *CLI, "model.parameterization=x0", "model.prior_fill=residual",
                 "--out", str(tmp_path / "residual")]) == 2
    assert "not the residual" in capsys.readouterr().err
    run = tmp_path / "x0"
    assert main(["train", *CLI, "model.parameterization=x0", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["impute", str(run), "--mask", "future_frames", "--mask-option", "given=2", "--n-samples", "2",
                 "--steps", "3", "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "copy_last_frame" in table and "digit_identity" in table
    assert list((run / "imputations").glob("future_frames-given2-*.safetensors"))


def test_distances_and_mixture_equal_the_explicit_translations():
    g = torch.Generator().manual_seed(3)
    head = TranslationMixture(2)
    source, guess = torch.rand(3, 2, 6, 7, generator=g) * 2 - 1, torch.randn(3, 2, 6, 7, generator=g)
    shifts = [(dy, dx) for dy in range(2, -3, -1) for dx in range(2, -3, -1)]  # row-major over the windows
    moved = torch.stack([translate((source + 1) / 2, torch.tensor([s] * 3)) * 2 - 1 for s in shifts], 1)
    torch.testing.assert_close(head.distances(source, guess), (moved - guess[:, None]).square().mean((2, 3, 4)))
    weights = torch.softmax(torch.randn(3, len(shifts), generator=g), -1)
    torch.testing.assert_close(head.mix(source, weights), (moved * weights[..., None, None, None]).sum(1))
    clips = guess[:2, :1, None].expand(2, 3, 1, 6, 7)
    mask = torch.ones_like(clips)  # every frame given: nothing to predict, the guess comes back
    assert torch.equal(head(clips, -clips, mask, torch.zeros(2)), clips)
