"""Grading across machines: a real Dask scheduler and workers on 127.0.0.1 (loopback only).

The corpus graded through two workers must give the gradebook that local grading gives, row by
row; a worker killed while it grades loses no submission (each ends graded or FAILED with the
reason, none twice); a worker whose checkout differs by one byte is refused; ``--resume`` grades
only the notebook that changed.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import LIMITS, ROOT
from corpus import make_corpus
from corpus.make_corpus import ASSIGNMENT, CASES
from dgm.course import batch, grading

pytestmark = pytest.mark.pipeline
DASK = Path(sys.executable).parent / "dask"
CORRECT = make_corpus.SUBMISSIONS / "correct" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def dask_env(**extra: str) -> dict:
    env = dict(os.environ, **extra)
    import dask

    if dask.config.get("distributed.worker.daemon", True):  # a venv not made by `make venv`
        env["DASK_DISTRIBUTED__WORKER__DAEMON"] = "False"
    return env


class Cluster:
    """A `dask scheduler` and named `dask worker` processes, each in its own process group."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.workers: dict[str, subprocess.Popen] = {}
        file = folder / "scheduler.json"
        self.scheduler = subprocess.Popen(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(file)],
            stdout=open(folder / "scheduler.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = json.loads(file.read_text())["address"]

    def start_worker(self, name: str, cwd: Path = ROOT, **env: str) -> None:
        self.workers[name] = subprocess.Popen(
            [str(DASK), "worker", self.address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard", "--name", name],
            cwd=cwd, stdout=open(self.folder / f"{name}.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
            env=dask_env(**env),
        )
        with self.client() as client:
            client.wait_for_workers(len(self.workers), timeout=90)

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=30)

    def kill(self, name: str) -> None:
        """SIGKILL the worker (nanny, worker process and its forkserver) at once."""
        process = self.workers.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def close(self) -> None:
        for name in list(self.workers):
            self.kill(name)
        os.killpg(self.scheduler.pid, signal.SIGKILL)
        self.scheduler.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        running.start_worker("one")
        running.start_worker("two")
        yield running
    finally:
        running.close()


def rows(path: Path) -> dict[tuple[str, str], dict]:
    return {(row["student"], row["assignment"]): row for row in csv.DictReader(path.open())}


def test_the_cluster_grades_the_corpus_as_local_grading_does(cluster, graded, tmp_path):
    work, local_results, _ = graded
    submissions = {(case, ASSIGNMENT): make_corpus.SUBMISSIONS / case / ASSIGNMENT / f"{ASSIGNMENT}.ipynb" for case in CASES}
    results = batch.grade_batch(submissions, tmp_path / "out", scheduler=cluster.address, limits=LIMITS)
    assert [(r.student, r.assignment) for r in results] == list(submissions)
    local = rows(grading.write_gradebook_csv(list(local_results.values()), tmp_path / "local.csv"))
    remote = rows(tmp_path / "out" / "grades.csv")
    assert remote.keys() == local.keys()
    for key, row in local.items():
        assert remote[key] == row, f"{key}: cluster {remote[key]} != local {row}"
    for result in results:
        graded_notebook = tmp_path / "out" / "autograded" / result.student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        feedback = tmp_path / "out" / "feedback" / result.student / ASSIGNMENT / f"{ASSIGNMENT}.html"
        assert graded_notebook.exists() == feedback.exists() == (result.status == "graded"), result.student
        assert batch.result_path(tmp_path / "out", result.student, ASSIGNMENT).exists()
    log = (tmp_path / "out" / "grading.log").read_text()
    assert f"{len(CASES)}/{len(CASES)} failed {sum(c.status == 'FAILED' for c in CASES.values())}" in log


def test_kernels_share_a_machines_cores_among_all_its_workers(cluster):
    with cluster.client() as client:
        assert batch.threads_per_host(client) == {"127.0.0.1": max(1, (os.cpu_count() or 1) // 2)}, (
            "two workers of one thread on this machine: each kernel gets half of its cores"
        )


def test_a_worker_of_another_course_version_is_refused(cluster, tmp_path):
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "lib" / "dgm", copy / "lib" / "dgm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "solutions", copy / "solutions")
    shutil.copytree(ROOT / "data" / "checkpoints", copy / "data" / "checkpoints", ignore=shutil.ignore_patterns("*.pt"))
    shutil.copy2(ROOT / "nbgrader_config.py", copy)
    test = copy / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    source = test.read_bytes()
    test.write_bytes(source.replace(b"the ", b"thE ", 1))  # one byte changed
    assert sum(a != b for a, b in zip(test.read_bytes(), source)) == 1
    cluster.start_worker("stale", cwd=copy, PYTHONPATH=str(copy / "lib"))
    try:
        with cluster.client() as client:
            versions = client.run(batch.course_version)
        assert len(set(versions.values())) == 2, "the copy's worker should report another course version"
        out, folder = tmp_path / "out", tmp_path / "submissions" / "correct" / ASSIGNMENT
        folder.mkdir(parents=True)
        shutil.copy2(CORRECT, folder)
        run = subprocess.run(
            [sys.executable, "-m", "dgm.course", "grade", str(folder.parents[1]), "--out", str(out),
             "--scheduler", cluster.address], capture_output=True, text=True,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        refused = [line for line in run.stdout.splitlines() if line.startswith("refused worker")]
        assert len(refused) == 1 and "course version" in refused[0] and "same commit" in refused[0], run.stdout
        record = json.loads(batch.result_path(out, "correct", ASSIGNMENT).read_text())
        assert record["result"]["status"] == "graded"
        stale_address = next(a for a, v in versions.items() if v != batch.course_version())
        assert stale_address in refused[0]
    finally:
        cluster.kill("stale")


def test_resume_grades_only_the_notebook_that_changed(cluster, tmp_path):
    folder = tmp_path / "submissions"
    for student, case in (("ada", "correct"), ("ben", "edited_test")):
        (folder / student / ASSIGNMENT).mkdir(parents=True)
        shutil.copy2(make_corpus.SUBMISSIONS / case / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", folder / student / ASSIGNMENT)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "dgm.course", "grade", str(folder), "--out", str(out), "--scheduler", cluster.address]
    first = subprocess.run(command, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout + first.stderr
    assert {key: row["auto_score"] for key, row in rows(out / "grades.csv").items()} == {
        ("ada", ASSIGNMENT): "13.0", ("ben", ASSIGNMENT): "10.0"}
    ada = batch.result_path(out, "ada", ASSIGNMENT).read_bytes()
    shutil.copy2(CORRECT, folder / "ben" / ASSIGNMENT)  # ben hands in a corrected notebook
    again = subprocess.run(command + ["--resume"], capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "grading 1 submission(s)" in again.stdout and "1 already graded" in again.stdout, again.stdout
    assert [line for line in again.stdout.splitlines() if line.startswith("[")][-1].count(" ben ") == 1
    assert " ada " not in "\n".join(line for line in again.stdout.splitlines() if line.startswith("["))
    assert batch.result_path(out, "ada", ASSIGNMENT).read_bytes() == ada, "ada's result was graded again"
    assert {key: row["auto_score"] for key, row in rows(out / "grades.csv").items()} == {
        ("ada", ASSIGNMENT): "13.0", ("ben", ASSIGNMENT): "13.0"}


def test_a_worker_killed_while_grading_loses_no_submission(cluster, tmp_path):
    """Three workers, three submissions. The worker grading one of them is killed, then the worker it
    moved to: that submission ends FAILED with the reason; every other one is graded; none twice."""
    cluster.start_worker("three")
    submissions = {(student, ASSIGNMENT): CORRECT for student in ("ann", "bob", "cal")}
    out, finished, killed = tmp_path / "out", {}, []

    def grade() -> None:
        finished["results"] = batch.grade_batch(submissions, out, scheduler=cluster.address, limits=LIMITS)

    grader = threading.Thread(target=grade)
    grader.start()
    with cluster.client() as client:
        names = {address: info["name"] for address, info in client.scheduler_info()["workers"].items()}
        victim = None
        deadline = time.monotonic() + 120
        while len(killed) < 2 and time.monotonic() < deadline and grader.is_alive():
            for address, keys in client.processing().items():
                keys = [key for key in keys if str(key).startswith("grade-")]
                if keys and (victim is None or victim in keys) and names.get(address) in cluster.workers:
                    victim = victim or keys[0]
                    time.sleep(2)  # let it start grading
                    cluster.kill(names[address])
                    killed.append((names[address], victim))
                    break
            time.sleep(0.2)
    grader.join(timeout=300)
    assert len(killed) == 2, f"the test could not kill twice: {killed}"
    results = finished["results"]
    assert sorted(r.student for r in results) == ["ann", "bob", "cal"]
    table = list(csv.DictReader((out / "grades.csv").open()))
    assert sorted(row["student"] for row in table) == ["ann", "bob", "cal"], "each submission once"
    lost = next(r for r in results if victim.startswith(f"grade-{r.student}--"))
    assert lost.status == "FAILED" and "died" in lost.reason, lost
    for result in results:
        assert (result.status == "graded" and result.auto_score == result.auto_max > 0) or (
            result.status == "FAILED" and "worker died" in result.reason), result
    assert sum(r.status == "graded" for r in results) >= 1
    assert len([line for line in (out / "grading.log").read_text().splitlines() if "/3 failed" in line]) == 3


def test_the_progress_line_counts_failures_and_estimates_the_rest(tmp_path):
    progress = batch.Progress(4, tmp_path / "log", stream=open(os.devnull, "w"))
    progress.start -= 60  # one minute in
    progress.update(grading.GradeResult("ann", ASSIGNMENT, "graded", auto_score=13, auto_max=13))
    line = progress.line(grading.GradeResult("bob", ASSIGNMENT, reason="timed out"))
    assert line.startswith("[##########..........] 2/4 failed 1 | 2.0/min | ETA 00:01:00 | bob")
    assert "FAILED timed out" in line
    assert "1/4 failed 0" in (tmp_path / "log").read_text()


def test_a_task_cannot_write_outside_out(tmp_path):
    outcome = {"result": {**grading.GradeResult("ann", ASSIGNMENT).__dict__, "cells": {}},
               "files": {"../escaped.txt": b"x"}}
    with pytest.raises(ValueError, match="outside OUT"):
        batch.store(tmp_path / "out", outcome, "0" * 64, "v")
    assert not (tmp_path / "escaped.txt").exists()

