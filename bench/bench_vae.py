"""VAE on binarized MNIST: test negative ELBO after a training budget, importance-weighted NLL, speed.

Budget: ``BENCH_VAE_SECONDS`` (default 900 s) of training, then the negative ELBO of all
10,000 test digits and the importance-weighted NLL (k = 1000) of every 10th.
Needs the real MNIST (``DGM_DATA``).
"""

from __future__ import annotations

import os

from likelihood import likelihood_row

from dgm.recipes.vae import train as train_vae
from dgm.vae import sample

SECONDS = float(os.environ.get("BENCH_VAE_SECONDS", 900))


def run() -> list[dict]:
    return [
        likelihood_row(
            train_vae, sample, SECONDS,
            lambda m: f"test -ELBO {m['test_negative_elbo_nats']} nats, IW NLL (k = 1000) {m['test_iw_nll_nats_k1000']} nats; "
            f"100 nats at {m['seconds_to_100_nats']} s, 95 nats at {m['seconds_to_95_nats']} s",
        )
    ]
