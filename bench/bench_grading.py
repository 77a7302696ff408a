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
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from dgm.course import grading
from dgm.course.notebooks import assignment_ids, repo_root, source_notebook

STUDENTS = int(os.environ.get("BENCH_GRADING_STUDENTS", 20))


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


def run() -> list[dict]:
    rows = [grade_batch(1, jobs=1), grade_batch(1, jobs=2), grade_batch(1, jobs=4), grade_batch(1, jobs=4, sandbox=False)]
    sandboxed, bare = rows[2]["seconds"], rows[3]["seconds"]
    rows[3]["sandbox cost"] = f"{100 * (sandboxed - bare) / bare:+.1f}% (goal <= 5%)"
    return rows + [grade_batch(STUDENTS, jobs=4)]
