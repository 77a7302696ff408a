"""The argument checks shared by the library modules (dgm.checks)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from dgm.checks import describe, float_images, positive_int, same_shape


def test_describe_names_a_tensors_dtype_and_shape():
    assert describe(torch.zeros(2, 3)) == "a torch.float32 tensor of shape (2, 3)"
    assert describe(torch.zeros(4, dtype=torch.int64)) == "a torch.int64 tensor of shape (4,)"
    assert describe(torch.tensor(1.0)) == "a torch.float32 tensor of shape ()"


def test_describe_names_what_is_not_a_tensor():
    assert describe(np.zeros((2, 3))) == "a float64 NumPy array of shape (2, 3)"
    assert describe([1, 2]) == "list"
    assert describe(3) == "int"
    assert describe(None) == "None"


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3)])
def test_positive_int_accepts_python_and_numpy_ints_and_returns_an_int(value):
    result = positive_int(value, "n")
    assert result == 3 and type(result) is int


def test_positive_int_minimum():
    assert positive_int(0, "padding", minimum=0) == 0
    assert positive_int(2, "steps", minimum=2) == 2
    with pytest.raises(ValueError, match=re.escape("steps: expected an int >= 2, got 1")):
        positive_int(1, "steps", minimum=2)
    with pytest.raises(ValueError, match=re.escape("padding: expected an int >= 0, got -1")):
        positive_int(-1, "padding", minimum=0)


@pytest.mark.parametrize(
    "value, shown", [(0, "0"), (-1, "-1"), (True, "True"), (2.0, "2.0"), ("3", "'3'"), (None, "None")]
)
def test_positive_int_rejects_with_the_name_the_expectation_and_the_value(value, shown):
    with pytest.raises(ValueError, match=re.escape(f"n: expected an int >= 1, got {shown}")):
        positive_int(value, "n")


def test_positive_int_rejects_numpy_bools_and_floats():
    for value in (np.bool_(True), np.float64(3.0)):
        with pytest.raises(ValueError, match="n: expected an int >= 1"):
            positive_int(value, "n")


def test_same_shape_returns_a_matching_tensor():
    reference, x = torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.int64)
    assert same_shape(x, "noise", reference, "x0") is x


@pytest.mark.parametrize(
    "value, got",
    [
        (torch.zeros(3, 2), "a torch.float32 tensor of shape (3, 2)"),
        (torch.zeros(2, 3, 1), "a torch.float32 tensor of shape (2, 3, 1)"),
        (np.zeros((2, 3)), "a float64 NumPy array of shape (2, 3)"),
        (None, "None"),
    ],
)
def test_same_shape_rejects_anything_else(value, got):
    message = f"noise: expected the shape of x0 (2, 3), got {got}"
    with pytest.raises(ValueError, match=re.escape(message)):
        same_shape(value, "noise", torch.zeros(2, 3), "x0")


def test_float_images_accepts_float_batches_with_the_right_channels():
    x = torch.zeros(2, 3, 4, 5)
    assert float_images(x, "x") is x
    assert float_images(x, "x", channels=3) is x
    assert float_images(x.double(), "x", channels=3, values="[-1, 1]") is not None


@pytest.mark.parametrize(
    "value, channels, values, message",
    [
        (torch.zeros(2, 4, 5), None, "", "x: expected float images of shape (B, C, H, W), got a torch.float32 tensor"),
        (torch.zeros(2, 1, 4, 4, dtype=torch.uint8), None, "", "got a torch.uint8 tensor of shape (2, 1, 4, 4)"),
        (torch.zeros(2, 1, 4, 4), 3, "", "x: expected float images of shape (B, 3, H, W), got a torch.float32"),
        ([0.0], None, "[-1, 1]", "x: expected float images of shape (B, C, H, W) in [-1, 1], got list"),
    ],
)
def test_float_images_rejects_anything_else(value, channels, values, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        float_images(value, "x", channels=channels, values=values)
