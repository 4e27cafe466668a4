"""Datasets: digits, Fashion-MNIST's IDX files, image folders; and their clear errors."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from polydiff.testing import check_modality
from polydiff_image.data import ImageDataError, load_digits, load_fashion_mnist, load_folder, lowres_of, read_idx


def test_modality_conforms():
    report = check_modality("image", dataset_options={"n": 64})
    assert report["batch_shape"] == [4, 1, 16, 16] and report["metric"] == "classifier_fd"
    assert report["metric_value"] > 0


def test_digits_are_real_labelled_images_in_range():
    ds = load_digits(size=16, lowres=2)
    b = ds.get_batch(torch.arange(len(ds)))
    assert len(ds) == 1797 and b.x.shape == (1797, 1, 16, 16) and ds.num_classes == 10
    assert b.x.min() == -1 and b.x.max() <= 1 and set(b.cond["label"].tolist()) == set(range(10))
    assert torch.allclose(b.cond["lowres"], lowres_of(b.x, 2)) and b.cond["lowres"].shape == (1797, 1, 8, 8)
    assert torch.allclose(ds.denormalize(b.x).aminmax()[0], torch.tensor(0.0))
    assert load_digits(n=10).cache_key != load_digits(n=20).cache_key == load_digits(n=20, lowres=2).cache_key


def _write_idx(path, array: np.ndarray) -> None:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (12, 28, 28)), rng.integers(0, 10, 12)
    for stem in ("train", "t10k"):
        _write_idx(tmp_path / f"{stem}-images-idx3-ubyte.gz", images)
        _write_idx(tmp_path / f"{stem}-labels-idx1-ubyte.gz", labels)
    assert np.array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), images)
    ds = load_fashion_mnist(root=str(tmp_path), split="all", size=28)
    b = ds.get_batch(torch.arange(len(ds)))
    assert len(ds) == 24 and torch.allclose((b.x[:12, 0] + 1) * 127.5, torch.from_numpy(images).float(), atol=1e-3)
    assert torch.equal(b.cond["label"][:12], torch.from_numpy(labels))
    assert load_fashion_mnist(root=str(tmp_path), size=16, n=5).x.shape == (5, 1, 16, 16)


def test_fashion_mnist_missing_names_the_debian_package(tmp_path):
    with pytest.raises(ImageDataError, match="apt-get install -y dataset-fashion-mnist"):
        load_fashion_mnist(root=str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"not idx"))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"not idx"))
    with pytest.raises(ValueError, match="not an IDX file"):
        load_fashion_mnist(root=str(tmp_path))


def test_folder_labels_come_from_sub_folders(tmp_path):
    from PIL import Image

    for k, name in enumerate(("cats", "dogs")):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((20, 30, 3), 40 * k + i, dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    ds = load_folder(path=str(tmp_path), size=8)
    b = ds.get_batch(torch.arange(len(ds)))
    assert ds.class_names == ("cats", "dogs") and b.cond["label"].tolist() == [0, 0, 0, 1, 1, 1]
    assert b.x.shape == (6, 3, 8, 8) and torch.allclose((b.x[4] + 1) * 127.5, torch.tensor(41.0), atol=0.01)
    grey = load_folder(path=str(tmp_path / "dogs"), size=8, channels=1)
    assert grey.num_classes is None and grey.x.shape == (3, 1, 8, 8)


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(ImageDataError, match="does not exist; set data.path"):
        load_folder(path=str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="no images"):
        load_folder(path=str(tmp_path))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        load_folder(path=str(tmp_path))
    with pytest.raises(ValueError, match=r"must lie in \[-1, 1\]"):
        from polydiff_image.data import ImageDataset

        ImageDataset(torch.full((2, 1, 4, 4), 3.0), name="x", options={})
