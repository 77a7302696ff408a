"""Run the benchmarks: ``python bench/run.py [NAME ...]`` (or ``make bench``).

Each ``bench/bench_<name>.py`` defines ``run() -> list[dict]``; every dict is a
row with at least ``model``, ``params``, ``budget``, ``steps/s`` (or another
speed) and its metrics. Rows are printed as one markdown table and stored in
``bench/results.json`` under the benchmark's name, with the machine's description
and the date; the stored results of benchmarks that did not run are kept.
Benchmarks measure; they never fall back to substitute data (they refuse to run
instead).
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover(names: list[str]) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if names:
        found = [p for p in found if p.stem.removeprefix("bench_") in names]
    return found


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def markdown(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def main(names: list[str]) -> int:
    import torch  # here, not at the top: the grading benchmark's processes re-import this script (multiprocessing)

    machine = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    results_path = HERE / "results.json"
    stored = json.loads(results_path.read_text()) if results_path.exists() else {}
    rows = []
    for path in discover(names):
        name = path.stem.removeprefix("bench_")
        start = time.perf_counter()
        new_rows = [{"benchmark": name, **row} for row in load(path).run()]
        rows += new_rows
        stored[name] = {"machine": machine, "date": datetime.date.today().isoformat(), "rows": new_rows}
        results_path.write_text(json.dumps(dict(sorted(stored.items())), indent=1) + "\n")  # after each, in case a later one fails
        print(f"{path.stem}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
