"""Grade a class: a batch of submissions, on this machine or across a Dask cluster.

:func:`grade_batch` is what ``make grade`` runs. Each (student, assignment) is one task,
:func:`grade_task`, which carries the notebook's bytes (no shared file system is assumed) and
returns the :class:`~dgm.course.grading.GradeResult` with the graded notebook, the feedback page
and the grading log as bytes. The instructor's machine writes each outcome under ``OUT/`` as it
arrives::

    OUT/results/<student>--<id>.json    the result, the notebook's SHA-256 and the course version
    OUT/autograded/<student>/<id>/      the graded notebook
    OUT/feedback/<student>/<id>/        the feedback page
    OUT/logs/<student>--<id>.log        nbgrader's log (the kernel's output included)
    OUT/grading.log                     one progress line per finished submission
    OUT/grades.csv                      one row per submission of the batch, written at the end

So a batch that stops half-way loses nothing: ``resume=True`` skips every submission whose
result is under ``OUT/results/`` for the same notebook (by hash) and the same course version.

Where the tasks run:

- ``scheduler=None`` (the default): here, ``jobs`` at a time, in threads of this process;
- ``scheduler="tcp://host:8786"``: on the workers of a running Dask scheduler (``dask
  scheduler`` on one machine, ``dask worker tcp://host:8786`` on each grading machine, in a
  checkout of the same commit after ``make venv``). Before any task is sent, every worker reports
  its :func:`course_version` (a hash of ``solutions/``, ``dgm`` and the shipped model cards),
  whether it can make the sandbox and whether it may start processes; a worker that differs
  from this checkout is refused with the reason, and tasks go only to the workers accepted.
  A worker that dies while grading loses nothing: the scheduler gives its task to another
  worker once (``allowed_failures = 1``); a second death ends the submission as FAILED with
  the reason. If no accepted worker is left, the batch stops and says which submissions were
  not graded (``resume=True`` grades them later).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator, TextIO
from urllib.parse import urlparse

from dgm.course import grading
from dgm.course.notebooks import repo_root

# This process's template courses, by (repository, assignment ids): see _template.
_TEMPLATES: dict[tuple[str, tuple[str, ...]], tuple[Path, set]] = {}
_TEMPLATE_LOCK = threading.Lock()
LOST = "a Dask worker died while grading it, twice (the scheduler retries a task once)"


class ClusterError(RuntimeError):
    """The cluster cannot grade this batch (no worker with this course version, none left, ...)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def course_version(root: Path | None = None) -> str:
    """SHA-256 over what decides a grade: ``nbgrader_config.py``, every file of ``solutions/`` (the
    tests), every ``.py`` file of the ``dgm`` package, and the shipped model cards (which hold the
    checkpoints' hashes). Two checkouts of one commit agree; one changed byte changes it."""
    root = root or repo_root()
    package = Path(grading.__file__).resolve().parents[1]
    from dgm.data import shipped

    files = [root / "nbgrader_config.py"]
    files += sorted(p for p in (root / "solutions").rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts)
    files += sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    files += sorted(shipped("checkpoints").glob("*.json"))
    digest = hashlib.sha256()
    for path in files:
        name = path.relative_to(package.parent if path.is_relative_to(package) else root).as_posix()
        if path.is_relative_to(shipped("checkpoints")):
            name = "checkpoints/" + path.name
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def worker_problem(version: str, sandbox: bool) -> str:
    """Why this process cannot grade for a client whose course version is ``version`` ("" if it can):
    another course version, no sandbox, or a daemonic process (which may not start the grading
    processes)."""
    mine = course_version()
    if mine != version:
        return (f"its course version {mine[:12]} is not the client's {version[:12]} (solutions/, dgm or the "
                f"model cards differ): start the worker in a checkout of the same commit")
    if sandbox:
        from dgm.course.sandbox import unavailable

        problem = unavailable()
        if problem:
            return f"it cannot make the grading sandbox ({problem})"
    if multiprocessing.current_process().daemon:
        return ("it runs as a daemonic process, which may not start grading processes: set "
                "DASK_DISTRIBUTED__WORKER__DAEMON=False (make venv writes this into the venv's Dask config) "
                "or start it with --no-nanny")
    return ""


def _template(ids: tuple[str, ...]) -> tuple[Path, set]:
    """This process's template course for ``ids`` (made once, kept until the process ends)."""
    key = (str(repo_root()), ids)
    with _TEMPLATE_LOCK:
        if key not in _TEMPLATES:
            folder = Path(tempfile.mkdtemp(prefix="dgm-template-"))
            _TEMPLATES[key] = (folder, grading.prepare_template(folder / "course", list(ids)))
        return _TEMPLATES[key]


def _worker_threads(host_threads: dict[str, int]) -> int:
    """Threads per kernel on this Dask worker: ``host_threads`` for its machine (see
    :func:`threads_per_host`), else the machine's cores shared by this worker's task slots."""
    from distributed import get_worker

    worker = get_worker()
    fallback = max(1, (os.cpu_count() or 1) // worker.state.nthreads)
    return host_threads.get(urlparse(worker.address).hostname, fallback)


def threads_per_host(client) -> dict[str, int]:
    """For each machine of the cluster, threads per kernel: its cores over the task slots of all the
    workers it runs (two workers of one thread on 2 cores: 1 thread each, not 2)."""
    workers = client.scheduler_info()["workers"]
    cores = client.run(os.cpu_count)
    slots: dict[str, int] = {}
    for info in workers.values():
        slots[info["host"]] = slots.get(info["host"], 0) + info["nthreads"]
    return {info["host"]: max(1, (cores.get(address) or 1) // slots[info["host"]]) for address, info in workers.items()}


def grade_task(
    student: str, assignment: str, notebook: bytes, version: str, ids: tuple[str, ...],
    limits: grading.Limits, feedback: bool, sandbox: bool, threads: int | None = None,
    host_threads: dict[str, int] | None = None,
) -> dict:
    """Grade one notebook given as bytes, in this process (a Dask worker, or a thread of the client).

    ``version`` must be this checkout's :func:`course_version` (else ``ClusterError``); ``ids``: the
    assignments of the batch (the template course is made once per process for them);
    ``threads``: per kernel (None: on a Dask worker, from ``host_threads``, see :func:`threads_per_host`). Returns
    ``{"result": GradeResult as a dict, "files": {"autograded/<student>/<id>/...": bytes, ...},
    "host": this machine's name}``; the files hold the graded notebook, the feedback page and the log.
    """
    problem = worker_problem(version, sandbox)
    if problem:
        raise ClusterError(f"this worker cannot grade: {problem}")
    template, schema = _template(ids)
    with tempfile.TemporaryDirectory(prefix="dgm-task-") as tmp:
        work = Path(tmp)
        path = work / "submitted.ipynb"
        path.write_bytes(notebook)
        result = grading.grade_submission(
            template / "course", schema, student, assignment, path, work, limits, feedback,
            threads or _worker_threads(host_threads or {}), sandbox,
        )
        files = {}
        for kind in ("autograded", "feedback"):
            for file in sorted((work / kind / student / assignment).rglob("*")):
                if file.is_file():
                    files[file.relative_to(work).as_posix()] = file.read_bytes()
        log = work / "logs" / f"{student}--{assignment}.log"
        if log.exists():
            files[f"logs/{student}--{assignment}.log"] = log.read_bytes()[-(1 << 20):]
    return {"result": asdict(result), "files": files, "host": os.uname().nodename}


def result_from(record: dict) -> grading.GradeResult:
    """The :class:`GradeResult` stored in a task's outcome or a result file."""
    fields = dict(record)
    fields["cells"] = {name: tuple(points) for name, points in fields["cells"].items()}
    return grading.GradeResult(**fields)


def result_path(out: Path, student: str, assignment: str) -> Path:
    return out / "results" / f"{student}--{assignment}.json"


def store(out: Path, outcome: dict, notebook_sha256: str, version: str) -> grading.GradeResult:
    """Write one task's outcome under ``out`` (replacing, never mixing, an earlier grading of the
    same submission) and return its result. The result file is written last: its presence means
    the rest is complete."""
    result = result_from(outcome["result"])
    for kind in ("autograded", "feedback"):
        shutil.rmtree(out / kind / result.student / result.assignment, ignore_errors=True)
    for name, data in outcome.get("files", {}).items():
        target = out / name
        if not target.resolve().is_relative_to(out.resolve()) or ".." in Path(name).parts:
            raise ValueError(f"a task returned a file outside OUT: {name!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    record = {"result": asdict(result), "notebook_sha256": notebook_sha256, "course_version": version,
              "host": outcome.get("host", ""), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    path = result_path(out, result.student, result.assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(record, indent=1))
    partial.replace(path)
    return result


def stored(out: Path, student: str, assignment: str, notebook_sha256: str, version: str) -> grading.GradeResult | None:
    """The result under ``out`` for this notebook (same hash) and course version, or None."""
    path = result_path(out, student, assignment)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("notebook_sha256") != notebook_sha256 or record.get("course_version") != version:
        return None
    return result_from(record["result"])


class Progress:
    """One line per finished submission: a bar, done/total, failures so far, rate and ETA, then the
    submission's outcome; printed to ``stream`` and appended to ``log``."""

    def __init__(self, total: int, log: Path, stream: TextIO = sys.stdout, width: int = 20):
        self.total, self.log, self.stream, self.width = total, log, stream, width
        self.done = self.failed = 0
        self.start = time.perf_counter()

    def line(self, result: grading.GradeResult) -> str:
        self.done += 1
        self.failed += result.status != "graded"
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        filled = round(self.width * self.done / max(self.total, 1))
        detail = f"{result.auto_score:g}/{result.auto_max:g}" if result.status == "graded" else result.reason
        return (f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
                f"failed {self.failed} | {60 * rate:.1f}/min | ETA {time.strftime('%H:%M:%S', time.gmtime(eta))} | "
                f"{result.student} {result.assignment} {result.status} {detail} ({result.seconds:.0f} s)")

    def update(self, result: grading.GradeResult) -> None:
        text = self.line(result)
        print(text, file=self.stream, flush=True)
        with open(self.log, "a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")


def _run_here(tasks: list[dict], jobs: int) -> Iterator[tuple[dict, dict | BaseException]]:
    """Yield (task, outcome or exception) as the tasks finish, ``jobs`` at a time in threads."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(grade_task, **task, threads=threads): task for task in tasks}
        for future in concurrent.futures.as_completed(futures):
            error = future.exception()
            yield futures[future], error if error else future.result()


def accepted_workers(client, version: str, sandbox: bool, say: Callable[[str], None]) -> list[str]:
    """Addresses of the workers that may grade for ``version``; each refused one is named with its
    reason through ``say``. Raises :class:`ClusterError` when none is accepted."""
    reports = client.run(worker_problem, version, sandbox, on_error="return")
    accepted = []
    for address, problem in sorted(reports.items()):
        if isinstance(problem, BaseException):
            problem = f"it could not check itself: {type(problem).__name__}: {problem}"
        if problem:
            say(f"refused worker {address}: {problem}")
        else:
            accepted.append(address)
    if not accepted:
        raise ClusterError(f"no worker of the scheduler can grade this batch ({len(reports)} connected, all refused)")
    return accepted


def _retry_once(dask_scheduler=None) -> None:
    """On the scheduler: a task whose worker dies is given to another worker once, not three times."""
    dask_scheduler.allowed_failures = 1


def _run_on_cluster(
    tasks: list[dict], scheduler: str, version: str, sandbox: bool, say: Callable[[str], None],
) -> Iterator[tuple[dict, dict | BaseException]]:
    """Yield (task, outcome or exception) as the tasks finish on the accepted workers of ``scheduler``."""
    from distributed import Client, KilledWorker, as_completed

    with Client(scheduler, timeout=30) as client:
        workers = accepted_workers(client, version, sandbox, say)
        say(f"grading on {len(workers)} worker(s) of {scheduler}: {', '.join(workers)}")
        client.run_on_scheduler(_retry_once)
        host_threads = threads_per_host(client)
        futures = {}
        for task in tasks:
            key = f"grade-{task['student']}--{task['assignment']}-{os.urandom(4).hex()}"
            future = client.submit(grade_task, **task, host_threads=host_threads, key=key, workers=workers,
                                   allow_other_workers=False, pure=False)
            futures[future] = task
        pending = as_completed(futures)
        checked = time.monotonic()
        while not pending.is_empty():
            finished = pending.next_batch(block=False)
            for future in finished:
                task = futures.pop(future)
                try:
                    yield task, future.result()
                except KilledWorker:
                    yield task, ClusterError(LOST)
                except Exception as error:  # noqa: BLE001 - every failure becomes the submission's reason
                    yield task, error
            if finished:
                continue
            time.sleep(0.2)
            if time.monotonic() - checked > 5:
                checked = time.monotonic()
                if not set(client.scheduler_info()["workers"]) & set(workers):
                    left = sorted(f"{t['student']}/{t['assignment']}" for t in futures.values())
                    client.cancel(list(futures))
                    raise ClusterError(
                        f"every accepted worker has left the scheduler; {len(left)} submission(s) not graded "
                        f"(run again with --resume to grade them): {', '.join(left)}"
                    )


def grade_batch(
    submissions: dict[tuple[str, str], Path],
    out: Path,
    scheduler: str | None = None,
    jobs: int = 1,
    limits: grading.Limits = grading.Limits(),
    sandbox: bool = True,
    feedback: bool = True,
    resume: bool = False,
    stream: TextIO = sys.stdout,
) -> list[grading.GradeResult]:
    """Grade ``{(student, assignment): notebook path}`` into ``out`` (see the module's docstring for
    its layout), here ``jobs`` at a time or on the Dask ``scheduler``'s workers. With ``resume``,
    submissions already graded under ``out`` (same notebook bytes, same course version) are not
    graded again. Returns one result per submission, in the order given, and writes
    ``out/grades.csv``. Raises :class:`~dgm.course.grading.SandboxUnavailable` (local grading
    without a sandbox) or :class:`ClusterError` before grading anything when it cannot start.
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs: expected a positive int, got {jobs!r}")
    if sandbox and scheduler is None:
        from dgm.course.sandbox import unavailable

        problem = unavailable()
        if problem:
            raise grading.SandboxUnavailable(problem)
    version = course_version()
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(0, out / "grading.log", stream)

    def say(text: str) -> None:
        print(text, file=stream, flush=True)
        with open(progress.log, "a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")

    ids = tuple(sorted({assignment for _, assignment in submissions}))
    results: dict[tuple[str, str], grading.GradeResult] = {}
    hashes, tasks = {}, []
    for (student, assignment), path in submissions.items():
        data = Path(path).read_bytes()
        hashes[student, assignment] = sha256_bytes(data)
        done = stored(out, student, assignment, hashes[student, assignment], version) if resume else None
        if done:
            results[student, assignment] = done
        else:
            tasks.append(dict(student=student, assignment=assignment, notebook=data, version=version, ids=ids,
                              limits=limits, feedback=feedback, sandbox=sandbox))
    progress.total = len(tasks)
    where = f"on the Dask scheduler {scheduler}" if scheduler else f"here, {jobs} at a time"
    say(f"grading {len(tasks)} submission(s) {where}"
        + (f"; {len(results)} already graded under {out} (--resume)" if results else ""))
    finished = _run_on_cluster(tasks, scheduler, version, sandbox, say) if scheduler else _run_here(tasks, jobs)
    stopped = None
    try:
        for task, outcome in finished:
            key = task["student"], task["assignment"]
            if isinstance(outcome, BaseException):
                outcome = {"result": asdict(grading.GradeResult(
                    *key, reason=f"{type(outcome).__name__}: {outcome}"[:300],
                    sandbox="bubblewrap" if sandbox else "none"))}
            results[key] = store(out, outcome, hashes[key], version)
            progress.update(results[key])
    except ClusterError as error:  # the batch cannot go on: keep what is graded, say what is not
        stopped = error
        say(f"stopped: {error}")
    ordered = [results.get(key) or grading.GradeResult(*key, reason=f"not graded: {stopped}"[:300]) for key in submissions]
    grading.write_gradebook_csv(ordered, out / "grades.csv")
    if stopped:
        raise stopped
    return ordered
