"""A user's own image folder: channels and size inferred from the files (and said), mixed sizes reported
with the rule used, 16-bit images scaled by their bit depth, files not read counted."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from polydiff.app.cli import main
from polydiff_image.data import load_folder


def _save(path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_16_bit_images_are_scaled_by_their_bit_depth_not_clipped(tmp_path) -> None:
    ramp = np.linspace(0, 65535, 16 * 16).reshape(16, 16).astype(np.uint16)
    _save(tmp_path / "depth16.png", ramp)
    with Image.open(tmp_path / "depth16.png") as im:
        assert im.mode == "I;16"
    ds = load_folder(path=str(tmp_path))
    got = (ds.x[0, 0].numpy() + 1) / 2  # model units [-1, 1] -> intensities [0, 1]
    np.testing.assert_allclose(got, ramp / 65535.0, atol=1e-6)  # the old 8-bit conversion gave ~all 1.0
    assert float(got.mean()) == pytest.approx(0.5, abs=1e-3)
    assert ds.x.shape == (1, 1, 16, 16) and "1 16-bit; 16-bit ones scaled by 65535, not clipped" in ds.summary


def test_channels_and_size_are_inferred_and_stated(tmp_path) -> None:
    rng = np.random.default_rng(0)
    _save(tmp_path / "grey" / "a.png", (rng.random((40, 50)) * 255).astype(np.uint8))
    _save(tmp_path / "grey" / "b.png", (rng.random((64, 64)) * 255).astype(np.uint8))
    grey = load_folder(path=str(tmp_path / "grey"))
    assert grey.x.shape == (2, 1, 40, 40)  # smallest shorter side 40, a multiple of 4
    assert "channels 1 (inferred: 0 colour, 2 greyscale image(s))" in grey.summary
    assert "size 40 (inferred: the smallest shorter side 40" in grey.summary
    _save(tmp_path / "grey" / "c.png", (rng.random((37, 90, 3)) * 255).astype(np.uint8))
    mixed = load_folder(path=str(tmp_path / "grey"))
    assert mixed.x.shape == (3, 3, 36, 36)  # 37 rounded down to a multiple of 4; one colour image -> RGB
    assert "greyscale replicated to RGB" in mixed.summary
    assert torch.equal(mixed.x[0, 0], mixed.x[0, 1]) and torch.equal(mixed.x[0, 1], mixed.x[0, 2])
    assert "sizes 50x40 (1), 64x64 (1), 90x37 (1): centre-cropped to squares and resized to 36x36 (bicubic)" \
        in mixed.summary
    given = load_folder(path=str(tmp_path / "grey"), size=48, channels=1)
    assert given.x.shape == (3, 1, 48, 48) and "inferred" not in given.summary
    assert "1 image(s) converted: luminance" in given.summary and "2 upscaled" in given.summary  # 40 and 37 < 48


def test_same_size_images_are_kept_and_files_not_read_are_counted(tmp_path) -> None:
    rng = np.random.default_rng(1)
    for cls in ("cats", "dogs"):
        for k in range(2):
            _save(tmp_path / cls / f"{k}.png", (rng.random((24, 24, 3)) * 255).astype(np.uint8))
    _save(tmp_path / "dogs" / "rgba.png", (rng.random((24, 24, 4)) * 255).astype(np.uint8))
    (tmp_path / "dogs" / "Thumbs.db").write_bytes(b"x")
    _save(tmp_path / "stray.png", (rng.random((24, 24, 3)) * 255).astype(np.uint8))
    ds = load_folder(path=str(tmp_path))
    assert ds.x.shape == (5, 3, 24, 24) and ds.num_classes == 2
    assert "5 image(s) in 2 class folder(s) (cats: 2, dogs: 3)" in ds.summary
    assert "sizes 24x24 (5): kept as they are" in ds.summary and "alpha channel dropped from 1 image(s)" in ds.summary
    assert "2 other file(s) ignored (.db: 1, image without a class folder: 1)" in ds.summary
    with Image.open(tmp_path / "cats" / "0.png") as im:
        exact = np.asarray(im, dtype=np.float64) / 255.0
    np.testing.assert_allclose((ds.x[0].permute(1, 2, 0).numpy() + 1) / 2, exact, atol=1e-6)  # no resampling


def test_cli_trains_on_a_folder_with_inferred_shape(tmp_path, capsys) -> None:
    rng = np.random.default_rng(2)
    for k in range(12):
        shape = (20, 28) if k % 2 else (16, 16)
        _save(tmp_path / "pics" / f"{k}.png", (rng.random(shape) * 65535).astype(np.uint16))
    run = tmp_path / "run"
    tiny = ["model.channels=8", "model.channel_mult=1,2", "model.heads=2", "train.steps=2", "train.batch_size=4",
            "train.warmup_steps=0", "train.device=cpu"]
    assert main(["train", "image", "data.dataset=folder", f"data.path={tmp_path / 'pics'}", *tiny,
                 "--out", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "polydiff: image folder 'pics'; 12 unlabelled image(s); channels 1 (inferred" in err
    assert "size 16 (inferred" in err and "12 16-bit" in err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["dataset"] == "folder"
