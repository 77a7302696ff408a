"""dgm.captions: measured attributes, captions with held-out templates and combinations, the tokenizer."""

from __future__ import annotations

import random

import pytest
import torch

from conftest import shared_mnist
from dgm import captions
from dgm.captions import AttributeScale, Tokenizer, caption, measure


def bar(width: int = 2, shear: float = 0.0, size: int = 28) -> torch.Tensor:
    """A vertical bar of ``width`` columns, its column moved by ``shear`` per row up, as (1, 1, size, size)."""
    image = torch.zeros(1, 1, size, size)
    for row in range(4, 24):
        left = round(13 + shear * (13.5 - row))
        image[0, 0, row, left : left + width] = 1.0
    return image


def test_measure_reads_ink_slant_and_width():
    upright, right, left, wide = bar(), bar(shear=0.3), bar(shear=-0.3), bar(width=6)
    ink, slant, width = measure(torch.cat([upright, right, left, wide])).T
    assert ink.tolist() == [40.0, 40.0, 40.0, 120.0]
    assert abs(slant[0]) < 1e-6 and slant[1] > 0.2 and slant[2] < -0.2, "a stroke leaning right has a positive slant"
    assert slant[1].item() == pytest.approx(-slant[2].item(), rel=0.05)
    assert width[3] > 2 * width[0]
    four = torch.cat([upright, right, left, wide])
    assert torch.equal(measure(four, batch_size=3), measure(four)), "measured in chunks, the same numbers"
    with pytest.raises(ValueError, match="images: expected"):
        measure(torch.zeros(2, 28, 28))


def test_attribute_thirds_are_per_class_for_ink():
    # class c holds bars of widths 1..9: the thirds of its ink split them 3 / 3 / 3 in every class
    images = torch.cat([bar(width=w) for w in range(1, 10)] * 10)
    labels = torch.arange(10).repeat_interleave(9)
    scale = AttributeScale.fit(images, labels)
    levels = scale(images, labels)
    assert levels[:9, 0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert levels.shape == (90, 3) and levels.dtype == torch.int64
    # the same bar is thick for a class of thin bars and thin for a class of thick ones
    thin_class = torch.cat([bar(width=1)] * 3 + [bar(width=2)] * 3)
    thick_class = torch.cat([bar(width=5)] * 3 + [bar(width=6)] * 3)
    both = torch.cat([thin_class, thick_class] + [bar(width=w) for w in (1, 2, 3)] * 8)
    both_labels = torch.tensor([0] * 6 + [1] * 6 + [c for c in range(2, 10) for _ in range(3)])
    scale = AttributeScale.fit(both, both_labels)
    probe = torch.cat([bar(width=4), bar(width=4)])
    assert scale(probe, torch.tensor([0, 1]))[:, 0].tolist() == [2, 0]


def training_and_held_out(n: int = 400):
    rng = random.Random(0)
    cases = [(rng.randrange(10), [rng.randrange(3) for _ in range(3)]) for _ in range(n)]
    return ([(y, a, caption(y, a, rng)) for y, a in cases], [(y, a, caption(y, a, rng, held_out=True)) for y, a in cases])


def names(text: str, attribute: str, level: int) -> bool:
    return any(f" {word} " in f" {text} " for word in captions.SYNONYMS[(attribute, level)])


def test_training_captions_never_name_the_held_out_combination_and_use_training_templates():
    train, held_out = training_and_held_out()
    assert not any(names(text, "thickness", 2) and names(text, "slant", 0) for _, _, text in train)
    assert any(names(text, "thickness", 2) and names(text, "slant", 0) for _, _, text in held_out)
    assert not any(text.startswith(("a picture of", "someone wrote")) for _, _, text in train)
    assert all(text.startswith(("a picture of", "someone wrote")) for _, _, text in held_out)


def test_captions_name_the_digit_and_only_attributes_the_image_has():
    train, held_out = training_and_held_out()
    for label, attributes, text in train + held_out:
        assert any(f" {w} " in f" {text} " for w in captions.DIGIT_WORDS[label]), text
        for name, level in zip(captions.ATTRIBUTES, attributes):
            for other in (0, 2):
                if other != level:
                    assert not names(text, name, other), (text, attributes)
    for label, attributes, text in held_out:  # held-out captions name every attribute the image has
        for name, level in zip(captions.ATTRIBUTES, attributes):
            if level != 1:
                assert names(text, name, level), (text, attributes)
    assert not any(" , " in f" {text} " and text.endswith(",") for _, _, text in train + held_out)


def test_tokenizer_round_trip_pads_and_cuts():
    tokenizer = Tokenizer()
    train, held_out = training_and_held_out(200)
    texts = [text for _, _, text in train]
    tokens = tokenizer.encode(texts, length=16)
    assert tokens.shape == (200, 16) and tokens.dtype == torch.int64
    assert (tokens != Tokenizer.UNKNOWN).all(), "every training caption word is in the vocabulary"
    assert tokenizer.decode(tokens) == texts
    new_words = {w for t in captions.HELD_OUT_TEMPLATES for w in t.split()} - {w for t in captions.TRAIN_TEMPLATES for w in t.split()}
    for _, _, text in held_out:
        decoded = tokenizer.decode(tokenizer.encode(text, length=16))[0].split()
        assert decoded == [("<unknown>" if w in new_words else w) for w in text.split()], "only the held-out templates' own words are unknown"
    assert tokenizer.encode("a 7")[0].tolist()[:4] == [tokenizer.ids["a"], tokenizer.ids["7"], Tokenizer.END, Tokenizer.PAD]
    cut = tokenizer.encode("a " * 30, length=8)[0]
    assert cut[-1] == Tokenizer.END and (cut[:-1] == tokenizer.ids["a"]).all()
    assert tokenizer.encode("a zebra")[0, 1] == Tokenizer.UNKNOWN


@pytest.mark.skipif(shared_mnist() is None, reason="DGM_DATA does not point at an MNIST mirror")
def test_captioned_mnist_thirds_and_splits():
    train = captions.captioned_mnist("train")
    assert train.images.shape == (60000, 1, 28, 28) and len(train.captions) == 60000
    shares = [(train.attributes[:, a] == level).float().mean().item() for a in range(3) for level in range(3)]
    assert all(abs(share - 1 / 3) < 0.01 for share in shares), shares
    test = captions.captioned_mnist("test")
    assert len(test.captions) == 10000 and all(t.startswith(("a picture of", "someone wrote")) for t in test.captions)
    assert captions.captioned_mnist("test").captions == test.captions, "the held-out split is fixed"
    with pytest.raises(ValueError, match="split"):
        captions.captioned_mnist("validation")


def test_insert_unknown_keeps_the_words_in_order_and_the_end_last():
    tokenizer = Tokenizer()
    tokens = tokenizer.encode(["a thick 7 leaning right", "the digit two", "a " * 20], length=16)
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        noisy = captions.insert_unknown(tokens, generator, p=1.0, most=3)
        assert noisy.shape == tokens.shape and (noisy[:, -1] != Tokenizer.UNKNOWN).all()
        for before, after in zip(tokens.tolist(), noisy.tolist()):
            words = before[: before.index(Tokenizer.END)]
            kept = [i for i in after[: after.index(Tokenizer.END)] if i != Tokenizer.UNKNOWN]
            added = after[: after.index(Tokenizer.END)].count(Tokenizer.UNKNOWN)
            assert kept == words[: len(kept)] and 1 <= added <= 3, "words keep their order; 1 to 3 unknown ids"
            assert len(kept) == len(words) or after.index(Tokenizer.END) == 15, "words are lost only when the caption is full"
    untouched = captions.insert_unknown(tokens, generator, p=0.0)
    assert torch.equal(untouched, tokens)
