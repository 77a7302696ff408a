"""PixelCNN on binarized MNIST: test NLL after a training budget, time to 95 and 90 nats, speed.

Budget: ``BENCH_PIXELCNN_SECONDS`` (default 1800 s) of training, then a full test-set
evaluation and sampling 100 images. Needs the real MNIST (``DGM_DATA``).
"""

from __future__ import annotations

import os
import time

from dgm.autoregressive import sample, train_pixelcnn

SECONDS = float(os.environ.get("BENCH_PIXELCNN_SECONDS", 1800))


def run() -> list[dict]:
    model, report = train_pixelcnn(seconds=SECONDS)
    start = time.perf_counter()
    sample(model, 100, seed=0)
    sampling = time.perf_counter() - start
    metrics = report["metrics"]
    return [
        {
            "model": report["architecture"],
            "params": sum(p.numel() for p in model.parameters()),
            "budget": f"{SECONDS:g} s",
            "steps/s": f"{report['steps'] / report['train_seconds']:.2f}",
            "metrics": f"test NLL {metrics['test_nll_nats']} nats ({metrics['test_bits_per_dim']} bits/dim); "
            f"95 nats at {metrics['seconds_to_95_nats']} s, 90 nats at {metrics['seconds_to_90_nats']} s; "
            f"{report['images_per_second']} train images/s; 100 samples in {sampling:.0f} s",
        }
    ]
