"""The model zoo: small pretrained checkpoints shipped in ``data/checkpoints/``.

Each model has a name, a function that builds the (untrained) network, and a
function that trains it, both in its recipe module (:mod:`dgm.recipes`). ``python -m dgm.zoo train NAME`` runs the training and
writes two files:

- ``NAME.pt``   -- ``{"model": state_dict}`` (tensors only, loaded with ``weights_only``);
- ``NAME.json`` -- the model card: data, command, steps, CPU time, metrics, the
  versions used, and the checkpoint's SHA-256.

:func:`load` verifies the SHA-256 against the card and refuses a mismatch (a
corrupt file, a Git LFS pointer, or a checkpoint that is not the one the card
describes). ``python -m dgm.zoo list`` shows what is shipped.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch
from torch import nn

from dgm.data import sha256_of, shipped
from dgm.device import get_device
from dgm.train import load_checkpoint, save_checkpoint

__all__ = ["ZooModel", "MODELS", "checkpoint_dir", "card", "load", "train"]


@dataclass(frozen=True)
class ZooModel:
    """A zoo entry. ``build`` and ``train`` are ``"module:function"`` names, imported when needed.

    ``build() -> nn.Module``; ``train(seconds: float | None) -> (nn.Module, dict)``
    where the dict holds at least ``data``, ``steps`` and ``metrics`` for the card.
    """

    name: str
    build: str
    train: str
    description: str


MODELS: dict[str, ZooModel] = {
    model.name: model
    for model in [
        ZooModel(
            "mnist-classifier",
            "dgm.recipes.classifier:build",
            "dgm.recipes.classifier:train",
            "evaluation classifier for MNIST-like 28x28 digits; its penultimate features give FID",
        ),
        ZooModel(
            "pixelcnn-mnist",
            "dgm.recipes.pixelcnn:build",
            "dgm.recipes.pixelcnn:train",
            "gated PixelCNN (vertical + horizontal stacks, no blind spot) for dynamically binarized 28x28 MNIST",
        ),
        ZooModel(
            "vae-mnist",
            "dgm.recipes.vae:build",
            "dgm.recipes.vae:train",
            "VAE with MLP encoder/decoder, 32-d Gaussian latent, Bernoulli pixels, for binarized 28x28 MNIST",
        ),
        ZooModel(
            "cgan-mnist",
            "dgm.recipes.cgan:build",
            "dgm.recipes.cgan:train",
            "class-conditional DCGAN generator (projection discriminator in training) for MNIST in [-1, 1]",
        ),
        ZooModel(
            "ddpm-mnist-cond",
            "dgm.recipes.ddpm:build",
            "dgm.recipes.ddpm:train",
            "class-conditional DDPM noise model (U-Net, null class for guidance) for MNIST in [-1, 1], T = 1000",
        ),
        ZooModel(
            "ldm-dit-mnist",
            "dgm.recipes.ldm:build",
            "dgm.recipes.ldm:train",
            "latent diffusion of MNIST: KL autoencoder (28x28 -> 4x7x7) + class-conditional DiT (adaLN-Zero) "
            "trained by flow matching",
        ),
        ZooModel(
            "clip-mnist",
            "dgm.recipes.clip:build",
            "dgm.recipes.clip:train",
            "a small CLIP for captioned MNIST digits: CNN image encoder, transformer text encoder, learned temperature",
        ),
        ZooModel(
            "text-dit-mnist",
            "dgm.recipes.text2image:build",
            "dgm.recipes.text2image:train",
            "text-to-image of MNIST digits: a DiT on ldm-dit-mnist's latents conditioned on clip-mnist's text "
            "embeddings, flow matching, classifier-free guidance on text",
        ),
    ]
}


def _resolve(target: str):
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def _entry(name: str) -> ZooModel:
    if name not in MODELS:
        raise ValueError(f"name: no zoo model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def checkpoint_dir() -> Path:
    """The shipped checkpoints: ``data/checkpoints/`` of a checkout, or inside an installed wheel."""
    return shipped("checkpoints")


def card(name: str, folder: Path | None = None) -> dict:
    """The model card of a shipped checkpoint."""
    _entry(name)
    path = (folder or checkpoint_dir()) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: train the model with `python -m dgm.zoo train {name}`")
    return json.loads(path.read_text())


def load(name: str, device: str | torch.device | None = None, folder: Path | None = None) -> nn.Module:
    """Build zoo model ``name``, load its verified weights, and return it in eval mode on ``device``."""
    entry, folder = _entry(name), folder or checkpoint_dir()
    path = folder / f"{name}.pt"
    expected = card(name, folder)["sha256"]
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: train the model with `python -m dgm.zoo train {name}`")
    got = sha256_of(path)
    if got != expected:
        raise ValueError(
            f"refusing to load {path}: its sha256 is {got}, the model card says {expected}. "
            f"The file is corrupt or not the checkpoint the card describes; retrain with `python -m dgm.zoo train {name}`"
        )
    model = _resolve(entry.build)()
    model.load_state_dict(load_checkpoint(path)["model"])
    return model.to(get_device(device)).eval()


def train(name: str, seconds: float | None = None, folder: Path | None = None) -> dict:
    """Train zoo model ``name`` (on the default device), write its checkpoint and card; return the card."""
    entry, folder = _entry(name), folder or checkpoint_dir()
    start = time.perf_counter()
    model, report = _resolve(entry.train)(seconds)
    elapsed = time.perf_counter() - start
    path = save_checkpoint(folder / f"{name}.pt", model={k: v.cpu() for k, v in model.state_dict().items()})
    device = get_device()
    model_card = {
        "name": name,
        "description": entry.description,
        "command": f"python -m dgm.zoo train {name}" + (f" --seconds {seconds:g}" if seconds else ""),
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "cpu_threads": torch.get_num_threads(),
        "wall_seconds": round(elapsed, 1),
        "date": date.today().isoformat(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        **report,
        "sha256": sha256_of(path),
        "bytes": path.stat().st_size,
    }
    (folder / f"{name}.json").write_text(json.dumps(model_card, indent=1) + "\n")
    return model_card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dgm.zoo", description="the course's pretrained models")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list zoo models and whether their checkpoints are shipped")
    trainer = commands.add_parser("train", help="train a zoo model and write its checkpoint and card")
    trainer.add_argument("name", choices=sorted(MODELS))
    trainer.add_argument("--seconds", type=float, default=None, help="training budget (default: the model's own)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, entry in MODELS.items():
            try:
                summary = f"{card(name)['metrics']}"
            except FileNotFoundError:
                summary = "(not trained)"
            print(f"{name:24s} {entry.description}\n{'':24s} {summary}")
        return 0
    print(json.dumps(train(args.name, args.seconds), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
