"""The U-Net backbone: conformance, shapes, conditioning inputs and clear errors."""

from __future__ import annotations

import pytest
import torch
from image_testing import randomize

from polydiff import plugins
from polydiff.testing import check_backbone
from polydiff_image.data import load_digits
from polydiff_image.registry import build_unet
from polydiff_image.unet import UNet, attention_sides, parse_mult

SMALL = {"channels": 8, "channel_mult": "1,2", "heads": 2}


@pytest.fixture(scope="module")
def digits():
    return load_digits(n=48, lowres=2)


@pytest.mark.parametrize("options", [{"class_cond": True}, {"conditional": True}, {"lowres_cond": True},
                                     {"embedding": "positional", "num_res_blocks": 2, "channel_mult": "1,2,2"},
                                     {"patch": 2, "conditional": True, "class_cond": True}])
def test_unet_conforms(digits, options):
    net = randomize(build_unet(digits, **{**SMALL, **options}))
    batch = digits.get_batch(torch.arange(4))
    cond = dict(batch.cond)
    if options.get("conditional"):
        mask = torch.ones_like(batch.x)
        mask[..., 4:12, 4:12] = 0
        cond |= {"x_cond": batch.x * mask, "cond_mask": mask}
    report = check_backbone(net, batch.__class__(x=batch.x, cond=cond))
    assert report["parameters"] > 1000


def test_randomized_unet_outputs_depend_on_every_conditioning_input(digits):
    net = randomize(build_unet(digits, **SMALL, class_cond=True, conditional=True, lowres_cond=True)).eval()
    b = digits.get_batch(torch.arange(2))
    mask = torch.zeros_like(b.x)
    kw = {"label": torch.tensor([1, 2]), "x_cond": b.x * mask, "cond_mask": mask, "lowres": b.cond["lowres"]}
    c = torch.zeros(2)
    base = net(b.x, c, **kw)
    assert base.shape == b.x.shape and base.abs().max() > 0
    for key, other in (("label", torch.tensor([3, 4])), ("cond_mask", 1 - mask), ("lowres", -b.cond["lowres"]),
                       ("x_cond", b.x)):
        changed = net(b.x, c, **(kw | {key: other}))
        assert (changed - base).abs().max() > 1e-4, key
    assert (net(b.x, c + 1, **kw) - base).abs().max() > 1e-4  # noise level


def test_attention_only_at_low_resolution():
    net = UNet(in_channels=3, resolution=(32, 32), channels=8, channel_mult="1,2,2,2", attention_resolution=8)
    assert attention_sides(net) == [8, 4]
    out = net(torch.randn(2, 3, 32, 32), torch.zeros(2))
    assert out.shape == (2, 3, 32, 32)


def test_mixer_runs_after_every_residual_block_with_the_frame_count():
    calls = []

    class Spy(torch.nn.Module):
        def __init__(self, ch):
            super().__init__()
            self.ch = ch

        def forward(self, h, frames):
            calls.append((self.ch, frames, h.shape[0]))
            return h

    net = UNet(in_channels=1, resolution=(8, 8), channels=8, channel_mult="1,2", mixer=Spy)
    x = torch.randn(6, 1, 8, 8)  # 2 videos of 3 frames
    net.body(x, net.embed(torch.zeros(6)), frames=3)
    n_blocks = 2 * 1 + 2 + 2 * 2  # down, mid, up
    assert len(calls) == n_blocks and all(f == 3 and n == 6 for _, f, n in calls)


def test_patch_runs_every_level_at_a_fraction_of_the_side_and_keeps_the_image_shape():
    sides = []

    class Spy(torch.nn.Module):
        def __init__(self, ch):
            super().__init__()

        def forward(self, h, frames):
            sides.append(h.shape[-1])
            return h

    net = UNet(in_channels=1, resolution=(28, 28), channels=8, channel_mult="1,2", attention_resolution=7, patch=2,
               mixer=Spy)
    assert attention_sides(net) == [7]  # attention_resolution counts patched sides: 28 / 2 / 2
    out = net(torch.randn(3, 1, 28, 28), torch.zeros(3))
    assert out.shape == (3, 1, 28, 28)
    assert set(sides) == {14, 7}  # 28 / patch, then one downsampling


def test_clear_errors(digits):
    with pytest.raises(ValueError, match="not divisible by 4"):
        UNet(in_channels=1, resolution=(18, 18), channel_mult="1,2,2")
    with pytest.raises(ValueError, match="not divisible by 8 = patch"):
        UNet(in_channels=1, resolution=(28, 28), channel_mult="1,2,2", patch=2)
    with pytest.raises(ValueError, match="comma-separated integers"):
        UNet(in_channels=1, resolution=(16, 16), channel_mult="1,two")
    net = build_unet(digits, **SMALL)
    with pytest.raises(ValueError, match=r"expects images \[B, 1, 16, 16\]"):
        net(torch.randn(2, 1, 8, 8), torch.zeros(2))
    with pytest.raises(ValueError, match="pass x_cond and cond_mask"):
        build_unet(digits, **SMALL, conditional=True)(torch.randn(2, 1, 16, 16), torch.zeros(2))
    with pytest.raises(ValueError, match="pass lowres"):
        build_unet(digits, **SMALL, lowres_cond=True)(torch.randn(2, 1, 16, 16), torch.zeros(2))
    with pytest.raises(ValueError, match="set data.lowres"):
        build_unet(load_digits(n=8), lowres_cond=True)
    with pytest.raises(ValueError, match="labels must lie in"):
        build_unet(digits, **SMALL, class_cond=True)(torch.randn(2, 1, 16, 16), torch.zeros(2),
                                                     label=torch.tensor([0, 10]))


def test_registered_with_its_options():
    spec = plugins.get_backbone("unet")
    assert spec.modality == "image" and {"channels", "class_cond", "conditional", "lowres_cond"} <= set(spec.options)


@pytest.mark.parametrize(("given", "levels"), [("1,2,2", (1, 2, 2)), ((1, 2), (1, 2)), (1, (1,)), ("1", (1,))])
def test_channel_mult_as_a_string_a_list_or_one_level(given, levels):
    # the benchmark's `--model channel_mult=1` (one level, the small footage net) arrives as an int
    assert parse_mult(given) == levels


@pytest.mark.parametrize("bad", ["1,x", "", 0, True])
def test_channel_mult_errors_name_the_form(bad):
    with pytest.raises(ValueError, match="channel_mult"):
        parse_mult(bad)
