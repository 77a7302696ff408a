"""dgm.data: IDX parsing, checksums, the offline message and fallback, toy sets."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from conftest import shared_mnist
from dgm import data


def write_idx(path, array: np.ndarray, type_code: int = 0x08, compress: bool = True) -> None:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    (gzip.open if compress else open)(path, "wb").write(payload)


def test_read_idx_round_trips_a_tiny_generated_file(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "tiny-idx3-ubyte.gz", images)
    got = data.read_idx(tmp_path / "tiny-idx3-ubyte.gz")
    assert got.shape == (2, 3, 4) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, images)


def test_read_idx_reads_big_endian_int32_uncompressed(tmp_path):
    values = np.array([1, -2, 70000], dtype=np.int32)
    write_idx(tmp_path / "ints.idx", values, type_code=0x0C, compress=False)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "ints.idx"), values)


def test_read_idx_rejects_bad_magic_and_truncated_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short.gz", np.zeros((2, 2), dtype=np.uint8))
    raw = gzip.open(tmp_path / "short.gz").read()[:-1]
    gzip.open(tmp_path / "short.gz", "wb").write(raw)
    with pytest.raises(ValueError, match="header promises 4 bytes"):
        data.read_idx(tmp_path / "short.gz")


def test_fetch_rejects_a_file_with_a_wrong_checksum(no_mnist):
    folder = no_mnist / "mnist"
    folder.mkdir()
    name = "t10k-images-idx3-ubyte.gz"
    (folder / name).write_bytes(b"not the real file")
    with pytest.raises(ValueError, match="wrong checksum"):
        data.mnist("test")
    assert (folder / name).read_bytes() == b"not the real file", "a user's file is never replaced silently"


def test_fetch_accepts_a_file_with_the_right_checksum(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"hello")
    digest = hashlib.sha256(b"hello").hexdigest()
    assert data.fetch("f.bin", tmp_path, digest, mirrors=(), download=False) == tmp_path / "f.bin"


def test_offline_error_names_the_files_and_the_folder(no_mnist):
    with pytest.raises(data.MissingDataError) as info:
        data.mnist("train")
    message = str(info.value)
    assert str(no_mnist / "mnist") in message
    for name in data.MNIST_FILES:
        assert name in message
    assert "DGM_DATA" in message
    assert not any(p.name.endswith(".part") for p in no_mnist.rglob("*")), "no partial download is left behind"


def test_fallback_gives_28x28_digits_and_says_so_once(no_mnist, capsys):
    with pytest.warns(UserWarning, match="MNIST IS NOT AVAILABLE") as caught:
        images, labels = data.mnist("test", fallback=True)
        data.mnist("train", fallback=True)
    assert len([w for w in caught if "MNIST" in str(w.message)]) == 1, "one warning per process, not one per split"
    assert "MNIST" not in capsys.readouterr().out, "the warning is the one place it is said"
    assert not data.mnist_available()
    assert images.shape == (1797, 1, 28, 28) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.shape == (1797,) and set(labels.tolist()) == set(range(10))


def test_mnist_split_is_checked():
    with pytest.raises(ValueError, match="split: expected 'train' or 'test'"):
        data.mnist("validation")


@pytest.mark.skipif(shared_mnist() is None, reason="DGM_DATA does not point at an MNIST mirror")
def test_mnist_test_split_from_the_mirror():
    images, labels = data.mnist("test", download=False)
    assert images.shape == (10000, 1, 28, 28) and labels.shape == (10000,)
    assert images.min() == 0.0 and images.max() == 1.0
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test labels
    assert torch.bincount(labels).tolist()[:3] == [980, 1135, 1032]
    assert data.mnist_available(download=False)


def test_digits_shapes_and_range():
    images, labels = data.digits()
    assert images.shape == (1797, 1, 8, 8) and labels.shape == (1797,)
    assert images.min() == 0.0 and images.max() == 1.0
    big, _ = data.digits(size=16)
    assert big.shape == (1797, 1, 16, 16)
    with pytest.raises(ValueError, match="size"):
        data.digits(size=1)


def test_binarize_threshold_and_seeded_sampling():
    x = torch.tensor([[[[0.2, 0.7]]]])
    assert data.binarize(x).tolist() == [[[[0.0, 1.0]]]]
    probs = torch.full((1, 1, 100, 100), 0.3)
    a, b = data.binarize(probs, seed=3), data.binarize(probs, seed=3)
    assert torch.equal(a, b)
    assert abs(a.mean().item() - 0.3) < 0.02
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        data.binarize(torch.tensor([1.5]))


@pytest.mark.parametrize("name", sorted(data.TOY_2D))
def test_toy_sets_shape_and_seed(name):
    a = data.toy_2d(name, 500, seed=1)
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, data.toy_2d(name, 500, seed=1))
    assert not torch.equal(a, data.toy_2d(name, 500, seed=2))


def test_toy_ring_has_eight_modes_on_radius_two():
    points = data.toy_2d("ring", 4000, seed=0)
    radius = points.norm(dim=1)
    assert abs(radius.mean().item() - 2.0) < 0.05
    angles = torch.round(torch.atan2(points[:, 1], points[:, 0]) / (torch.pi / 4)) % 8
    assert torch.bincount(angles.long(), minlength=8).min() > 400


def test_toy_bad_arguments():
    with pytest.raises(ValueError, match="name: expected one of"):
        data.toy_2d("circles", 10)
    with pytest.raises(ValueError, match="n: expected a positive int"):
        data.toy_2d("ring", 0)


def test_subset_takes_the_same_rows_of_every_tensor():
    x = torch.arange(100).float()
    y = torch.arange(100) * 2
    sx, sy = data.subset(x, y, n=10, seed=3)
    assert len(sx) == 10 and torch.equal(sy, sx.long() * 2)
    assert len(set(sx.tolist())) == 10, "no row is taken twice"
    assert torch.equal(sx, data.subset(x, y, n=10, seed=3)[0])
    with pytest.raises(ValueError, match=r"n: expected an int in \[1, 100\]"):
        data.subset(x, n=101)


def test_binarized_mnist_is_binary_and_seeded(no_mnist):
    with pytest.warns(UserWarning):
        a, labels = data.binarized_mnist("test", seed=5, fallback=True)
        b, _ = data.binarized_mnist("test", seed=5, fallback=True)
    assert set(a.unique().tolist()) <= {0.0, 1.0} and torch.equal(a, b)
    assert len(labels) == len(a)
