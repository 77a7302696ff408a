"""Procedural samplers: how fast the plant data set renders (images/s at 32x32 and 64x64)."""

from __future__ import annotations

import time

from dgm.lsystem import render_plants

BUDGET_SECONDS = 20


def run() -> list[dict]:
    rows = []
    for size in (32, 64):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < BUDGET_SECONDS / 2:
            render_plants(200, size=size, seed=count)
            count += 200
        elapsed = time.perf_counter() - start
        rows.append(
            {
                "model": f"stochastic bush L-system, {size}x{size}",
                "params": 0,
                "budget": f"{BUDGET_SECONDS // 2} s",
                "images/s": f"{count / elapsed:.0f}",
            }
        )
    return rows
