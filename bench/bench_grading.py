"""Seconds to autograde complete course submissions (every assignment), as an instructor would.

One "complete submission" is one student's notebooks for all the assignments; the solved
notebooks stand in for it (every cell runs to the end, as in a good submission). Measured: one
complete submission graded 1, 2 and 4 notebooks at a time (``jobs``), then a batch of
``BENCH_GRADING_STUDENTS`` (default 20) students graded 4 at a time, with feedback, under the
default :class:`dgm.course.grading.Limits`, every kernel in the bubblewrap sandbox. Goal: at most
3 minutes per complete submission. One more row grades the complete submission at 4 jobs
without the sandbox (``--no-sandbox``): the sandbox's cost, goal at most 5%.
More jobs than cores pays on 2 cores: fast mode trains for fixed numbers of seconds, which
overlap, and each job spends seconds starting a kernel and importing torch in it.

Across machines (:mod:`dgm.course.batch`): ``BENCH_GRADING_CLUSTER`` (default 2) complete
submissions graded by ``grade_batch`` with the same two task slots three ways: here (``jobs=2``),
on a Dask scheduler with one worker of two threads, and with two workers of one thread (all on
127.0.0.1, workers started as an instructor would, ``dask worker ADDRESS``). Goal: the
distributed path costs at most 5% per task. From the measured rate, the last row estimates the
wall time of 300 students on 10 machines of 8 cores.

``BENCH_GRADING_ROWS`` picks row groups (comma-separated, default all): ``jobs`` (1, 2, 4 jobs
and no sandbox), ``class`` (the batch of students), ``cluster``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from dgm.course import batch, grading
from dgm.course.notebooks import assignment_ids, repo_root, source_notebook

STUDENTS = int(os.environ.get("BENCH_GRADING_STUDENTS", 20))
CLUSTER_STUDENTS = int(os.environ.get("BENCH_GRADING_CLUSTER", 2))
ROWS = os.environ.get("BENCH_GRADING_ROWS", "jobs,class,cluster").split(",")


def grade_batch(students: int, jobs: int, sandbox: bool = True) -> dict:
    ids = assignment_ids()
    submissions = {(f"student{s:02d}", i): source_notebook(i) for s in range(students) for i in ids}
    with tempfile.TemporaryDirectory(prefix="dgm-bench-grading-") as tmp:
        start = time.perf_counter()
        results = grading.autograde(submissions, Path(tmp) / "work", repo_root(), feedback=True, jobs=jobs,
                                   sandbox=sandbox)
        seconds = time.perf_counter() - start
    full = sum(r.status == "graded" and r.auto_score == r.auto_max > 0 for r in results)
    slowest = max(results, key=lambda r: r.seconds)
    return {
        "model": f"autograde {students} complete submission(s) x {len(ids)} notebooks, {jobs} at a time"
                 + ("" if sandbox else ", no sandbox"),
        "params": "-",
        "budget": "fast mode, default limits, with feedback",
        "seconds": round(seconds, 1),
        "seconds per complete submission": round(seconds / students, 1),
        "goal (<= 180 s)": "met" if seconds / students <= 180 else "NOT met",
        "notebooks with full marks": f"{full} of {len(results)}",
        "slowest notebook": f"{slowest.assignment} {slowest.seconds:.0f} s",
    }


@contextmanager
def dask_cluster(folder: Path, workers: int, threads: int):
    """A `dask scheduler` and ``workers`` `dask worker` processes of ``threads`` threads on 127.0.0.1;
    yields the scheduler's address."""
    dask = str(Path(sys.executable).parent / "dask")
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    file = folder / "scheduler.json"
    started = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", str(file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)]
    try:
        while not file.exists():
            time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        started += [subprocess.Popen([dask, "worker", address, "--nthreads", str(threads), "--host", "127.0.0.1",
                                      "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, env=env) for _ in range(workers)]
        from distributed import Client

        with Client(address) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for process in started:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def grade_spread(students: int, workers: int | None, slots: int = 2) -> dict:
    """Grade ``students`` complete submissions with ``slots`` task slots: here (``workers=None``) or
    on ``workers`` Dask workers of ``slots // workers`` threads each."""
    ids = assignment_ids()
    submissions = {(f"student{s:02d}", i): source_notebook(i) for s in range(students) for i in ids}
    with tempfile.TemporaryDirectory(prefix="dgm-bench-cluster-") as tmp:
        if workers is None:
            start = time.perf_counter()
            results = batch.grade_batch(submissions, Path(tmp) / "out", jobs=slots, stream=open(os.devnull, "w"))
            where = f"here, jobs={slots}"
        else:
            with dask_cluster(Path(tmp), workers, slots // workers) as address:
                start = time.perf_counter()  # the workers are up, as they would be for a class
                results = batch.grade_batch(submissions, Path(tmp) / "out", scheduler=address,
                                            stream=open(os.devnull, "w"))
            where = f"Dask, {workers} worker(s) x {slots // workers} thread(s)"
        seconds = time.perf_counter() - start
    return {
        "model": f"grade_batch {students} complete submission(s) x {len(ids)} notebooks, {where}",
        "params": "-",
        "budget": "fast mode, default limits, with feedback, sandbox",
        "seconds": round(seconds, 1),
        "notebooks/min": round(60 * len(results) / seconds, 2),
        "notebooks with full marks": f"{sum(r.status == 'graded' and r.auto_score == r.auto_max > 0 for r in results)} "
                                     f"of {len(results)}",
    }


def cluster_rows() -> list[dict]:
    rows = [grade_spread(CLUSTER_STUDENTS, None), grade_spread(CLUSTER_STUDENTS, 1), grade_spread(CLUSTER_STUDENTS, 2)]
    here = rows[0]["seconds"]
    for row in rows[1:]:
        row["overhead per task"] = f"{100 * (row['seconds'] - here) / here:+.1f}% (goal <= 5%)"
    per_core = rows[-1]["notebooks/min"] / (os.cpu_count() or 1)  # with 2 slots on this machine's cores
    notebooks, cores = 300 * len(assignment_ids()), 10 * 8
    rows.append({
        "model": "estimate: 300 students on 10 machines of 8 cores",
        "params": "-",
        "budget": "from the 2-worker row: notebooks/min per core x 80 cores",
        "seconds": round(60 * notebooks / (per_core * cores)),
        "notebooks/min": round(per_core * cores, 1),
        "notebooks with full marks": f"{notebooks} (estimated)",
    })
    return rows


def run() -> list[dict]:
    rows = []
    if "jobs" in ROWS:
        rows += [grade_batch(1, jobs=1), grade_batch(1, jobs=2), grade_batch(1, jobs=4), grade_batch(1, jobs=4, sandbox=False)]
        sandboxed, bare = rows[2]["seconds"], rows[3]["seconds"]
        rows[3]["sandbox cost"] = f"{100 * (sandboxed - bare) / bare:+.1f}% (goal <= 5%)"
    if "class" in ROWS:
        rows.append(grade_batch(STUDENTS, jobs=4))
    if "cluster" in ROWS:
        rows += cluster_rows()
    return rows
