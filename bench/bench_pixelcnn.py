"""PixelCNN on binarized MNIST: test NLL after a training budget, time to 95 and 90 nats, speed.

Budget: ``BENCH_PIXELCNN_SECONDS`` (default 1800 s) of training, then a full test-set
evaluation and sampling 100 images. Needs the real MNIST (``DGM_DATA``).
"""

from __future__ import annotations

import os

from likelihood import likelihood_row

from dgm.autoregressive import sample
from dgm.recipes.pixelcnn import train as train_pixelcnn

SECONDS = float(os.environ.get("BENCH_PIXELCNN_SECONDS", 1800))


def run() -> list[dict]:
    return [
        likelihood_row(
            train_pixelcnn, sample, SECONDS,
            lambda m: f"test NLL {m['test_nll_nats']} nats ({m['test_bits_per_dim']} bits/dim); "
            f"95 nats at {m['seconds_to_95_nats']} s, 90 nats at {m['seconds_to_90_nats']} s",
        )
    ]
