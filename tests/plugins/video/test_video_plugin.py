"""The video modality through the conformance kit; the space-time U-Net; exact masked sampling."""

import pytest
import torch

import polydiff
from polydiff.testing import check_backbone, check_modality
from polydiff_video.backbone import TemporalAttention, VideoUNet, build_video_unet, context_frames
from polydiff_video.data import load_moving_digits

TINY = {"n": 12, "frames": 4, "size": 16, "digit_size": 8}
NET = {"channels": 8, "channel_mult": "1,2"}


@pytest.fixture(scope="module")
def digits():
    return load_moving_digits(**TINY)


def test_modality_conforms():
    report = check_modality("video", dataset_options=TINY)
    assert report["batch_shape"] == [4, 4, 1, 16, 16] and report["backbone"] == "video_unet"
    assert report["metric"] == "frame_fd" and report["metric_value"] >= 0


def test_mask_strategies_and_metrics_are_registered():
    names = {s.name for s in polydiff.plugins.mask_strategies()}
    for name, opts in (("future_frames", {"given": 2}), ("middle_frames", {"given": 1})):
        spec = polydiff.plugins.get_mask_strategy(name)
        assert dict(spec.options) == opts
    assert {"future_frames", "middle_frames", "video_mixed"} <= names
    metrics = {m.name: m for m in polydiff.plugins.metrics("video")}
    assert metrics["digit_identity"].task == "impute" and metrics["centroid_error"].task == "impute"
    assert {"frame_fd", "frame_diff_w1", "mae"} <= set(metrics)


@pytest.mark.parametrize("temporal", ["attention", "conv", "both"])
def test_backbone_conforms(digits, temporal):
    report = check_backbone(build_video_unet(digits, temporal=temporal, **NET), digits)
    assert report["independence"] < 1e-5


def test_conditional_class_backbone_conforms(digits):
    net = build_video_unet(digits, class_cond=True, conditional=True, **NET)
    b = digits.get_batch(torch.arange(4))
    mask = torch.zeros_like(b.x)
    mask[:, :2] = 1
    check_backbone(net, b, cond={"x_cond": b.x * mask, "cond_mask": mask, "label": torch.tensor([3, -1, 0, 9])})
    with pytest.raises(ValueError, match="x_cond and cond_mask"):
        net(b.x, torch.zeros(4))
    with pytest.raises(ValueError, match=r"expects clips \[B, 4, 1, 16, 16\]"):
        net(b.x[:, :3], torch.zeros(4))


def test_context_frames_are_the_nearest_given_frames_past_first():
    b, t = 2, 5
    x = torch.arange(b * t, dtype=torch.float).reshape(b, t, 1, 1, 1).expand(b, t, 1, 2, 2).contiguous()
    mask = torch.zeros_like(x)
    mask[0, :2] = 1  # frame prediction: frames 0, 1 given
    mask[1, 0] = mask[1, 4] = 1  # interpolation: first and last given
    ctx = context_frames(x * mask, mask, 2)  # [B, T, 2 * (C + 1), H, W]: (frame, distance) x 2
    assert ctx.shape == (b, t, 4, 2, 2)
    frame, dist = ctx[:, :, 0::2, 0, 0], ctx[:, :, 1::2, 0, 0] * t  # [B, T, 2] each
    assert frame[0].tolist() == [[0, 1], [1, 0], [1, 0], [1, 0], [1, 0]]  # the latest first, then the one before
    assert dist[0].round().tolist() == [[0, -1], [0, 1], [1, 2], [2, 3], [3, 4]]
    assert frame[1].tolist() == [[5, 9], [5, 9], [5, 9], [5, 9], [9, 5]]  # no second past frame: the next one
    assert dist[1].round().tolist() == [[0, -4], [1, -3], [2, -2], [3, -1], [0, 4]]
    one = torch.zeros_like(mask)
    one[:, 0] = 1
    assert torch.all(context_frames(x * one, one, 2)[:, :, 2:] == 0), "a missing second frame is empty"
    wide = context_frames(x * mask, mask, t + 2)  # more slots than frames: the extra ones are empty
    assert wide.shape == (b, t, (t + 2) * 2, 2, 2) and torch.all(wide[:, :, 2 * t:] == 0)


@pytest.mark.parametrize("context", [0, 2])
def test_context_backbone_conforms_and_hidden_frames_see_the_given_ones(digits, context):
    # a kernel-1 temporal conv mixes no frames: only the context channels can carry a given frame
    net = _randomise(build_video_unet(digits, conditional=True, context=context, temporal="conv",
                                      temporal_kernel=1, **NET))
    b = digits.get_batch(torch.arange(2))
    mask = torch.zeros_like(b.x)
    mask[:, :2] = 1
    check_backbone(net, b, cond={"x_cond": b.x * mask, "cond_mask": mask})
    other = b.x.clone()
    other[:, 1] = -other[:, 1]  # change a given frame
    with torch.no_grad():
        a = net(b.x, torch.zeros(2), x_cond=b.x * mask, cond_mask=mask)
        c = net(b.x, torch.zeros(2), x_cond=other * mask, cond_mask=mask)
    change = float((a[:, 3] - c[:, 3]).abs().max())
    assert change > 1e-3 if context else change == 0, f"context {context}: the last frame changed by {change}"
    with pytest.raises(ValueError, match="needs conditional = true"):
        build_video_unet(digits, context=2)


def test_extrapolate_backbone_conforms_and_sees_the_moved_frame(digits):
    net = _randomise(build_video_unet(digits, conditional=True, extrapolate=2, temporal="conv", temporal_kernel=1,
                                      **NET))
    b = digits.get_batch(torch.arange(2))
    mask = torch.zeros_like(b.x)
    mask[:, :2] = 1
    check_backbone(net, b, cond={"x_cond": b.x * mask, "cond_mask": mask})
    other = b.x.clone()
    other[:, 1] = -other[:, 1]  # change a given frame: with frame-local temporal layers only the
    with torch.no_grad():  # extrapolated frame can carry it into a hidden frame
        a = net(b.x, torch.zeros(2), x_cond=b.x * mask, cond_mask=mask)
        c = net(b.x, torch.zeros(2), x_cond=other * mask, cond_mask=mask)
    assert float((a[:, 3] - c[:, 3]).abs().max()) > 1e-4
    with pytest.raises(ValueError, match="needs conditional = true"):
        build_video_unet(digits, extrapolate=2)


def _randomise(net):
    """Zero-initialised output layers make a fresh net ignore its temporal modules; give them weights."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            if not p.abs().sum():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return net.eval()


@pytest.mark.parametrize("temporal", ["attention", "conv"])
def test_temporal_modules_mix_frames_and_only_frames(temporal):
    net = _randomise(VideoUNet(frames=4, in_channels=1, resolution=(8, 8), channels=8, channel_mult="1",
                               temporal=temporal))
    x = torch.randn(2, 4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[0, 3] += 1.0  # change the last frame of clip 0
    with torch.no_grad():
        a, b = net(x, torch.zeros(2)), net(y, torch.zeros(2))
    assert (a[0, 0] - b[0, 0]).abs().max() > 1e-4  # frame 0 sees frame 3
    assert torch.allclose(a[1], b[1], atol=1e-6)  # clip 1 does not


def test_temporal_attention_knows_frame_order():
    att = _randomise(TemporalAttention(8, heads=2))
    h = torch.randn(1, 8, 1, 1).expand(3, 8, 1, 1).contiguous()  # three identical frames
    out = att(h, 3)
    assert (out[0] - out[2]).abs().max() > 1e-4  # identical content, different place in time


def test_bad_backbone_options(digits):
    with pytest.raises(ValueError, match="temporal must be one of"):
        build_video_unet(digits, temporal="lstm")
    with pytest.raises(ValueError, match="odd"):
        build_video_unet(digits, temporal="conv", temporal_kernel=2)
    unlabelled = load_moving_digits(**TINY)
    unlabelled.num_classes = None
    with pytest.raises(ValueError, match="labelled dataset"):
        build_video_unet(unlabelled, class_cond=True)


def test_masked_sampling_keeps_given_frames_exact(digits):
    net = build_video_unet(digits, **NET)
    den = polydiff.Denoiser(net).eval()
    batch = digits.get_batch(torch.arange(3))
    target = polydiff.plugins.get_mask_strategy("future_frames").bind({"given": 2})(
        torch.ones_like(batch.x), torch.Generator().manual_seed(0))
    with torch.no_grad():
        imp = polydiff.impute(den, batch, target, n_samples=2, sampler="euler", steps=3, spec=digits.spec)
    assert imp.samples.shape == (3, 2, 4, 1, 16, 16)
    assert torch.equal(imp.samples[:, :, :2], batch.x[:, None, :2].expand(3, 2, 2, 1, 16, 16))
    assert (imp.samples[:, :, 2:] - batch.x[:, None, 2:]).abs().max() > 0.01  # predicted frames are sampled
