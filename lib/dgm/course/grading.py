"""Release and autograde with nbgrader, one submission at a time, each in a throwaway course.

Grading never happens inside the repository. :func:`autograde` builds a template course
directory (``nbgrader_config.py`` + the needed ``solutions/<id>/``), lets nbgrader record the
assignments in a new gradebook, and deletes the sources again. Each submission is then graded in
its own copy of that template, by its own grading process (nbgrader's autograde, then its
feedback), so that

- the student's kernel runs in the bubblewrap sandbox of :mod:`dgm.course.sandbox`: it sees
  neither the repository nor any gradebook, writes only its own tmpfs and has no network
  (``sandbox=False`` grades without it, for machines that have no bubblewrap);
- every submission runs under :class:`Limits`: a per-cell timeout (nbgrader interrupts the
  kernel), a wall-clock limit for the whole notebook (after which the process group, kernel
  included, is killed), a memory limit (``RLIMIT_AS``, inherited by the kernel), a cap on
  the output lines kept per cell and, in the sandbox, caps on processes and written bytes;
- after each run the gradebook's schema must be the one nbgrader made (no triggers, views or
  extra tables), else the submission is FAILED as "gradebook tampered";
- one submission that hangs, crashes or exhausts its memory ends as ``FAILED`` with the reason,
  and the batch goes on; ``jobs`` submissions can be graded side by side.

Every submission ends as a :class:`GradeResult`: ``graded`` with per-cell points, or ``FAILED``
with the reason (never a silent 0). Graded notebooks, feedback and logs are collected under the
work folder as ``autograded/<student>/<id>/``, ``feedback/<student>/<id>/`` and ``logs/``.

The grading processes are forked from a server process that has imported nbgrader once
(``multiprocessing``'s forkserver, where the platform has one): importing nbgrader takes seconds,
and a class has many notebooks to grade.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from dgm.course.notebooks import assignment_ids, kernel_env, repo_root, source_notebook, unreadable


class SandboxUnavailable(RuntimeError):
    """This machine cannot run the grading sandbox (no bubblewrap, or no namespaces for it)."""


@dataclass(frozen=True)
class Limits:
    """What one submission may use while it is graded.

    ``cell_seconds``: per cell, after which nbgrader interrupts the kernel (the cell scores 0, the
    rest of the notebook runs); ``notebook_seconds``: for the whole notebook, after which the
    grading process and its kernel are killed (FAILED: a cell that ignores interrupts);
    ``memory_gb``: address space of the kernel (an allocation beyond it raises ``MemoryError``)
    and of nbgrader; ``output_lines``: lines of output kept per cell in the graded notebook.
    In the sandbox only: ``disk_mb``, the size of the kernel's writable tmpfs (working directory,
    HOME, /tmp; a write beyond it fails with "No space left on device"); ``processes``, the
    processes and threads the kernel's user may run (a fork beyond it fails).
    """

    cell_seconds: int = 300
    notebook_seconds: int = 1800
    memory_gb: float = 6.0
    output_lines: int = 1000
    disk_mb: int = 512
    processes: int = 256

    def nbgrader_config(self) -> dict:
        """The nbgrader settings that enforce the cell timeout, the output cap and the sandbox's caps."""
        return {
            "Execute": {"timeout": self.cell_seconds},
            "LimitOutput": {"max_lines": self.output_lines},
            "SandboxedKernelManager": {"disk_mb": self.disk_mb, "processes": self.processes},
        }


@dataclass
class GradeResult:
    """The outcome of grading one student's notebook for one assignment.

    ``auto_score``/``auto_max``: points of autograded test cells; ``manual_max``: points that need
    a human (written answers); ``cells``: grade_id -> (score, or None if not graded yet, max
    points); ``first_error``: the first error raised outside the test cells (e.g. an import that
    failed), which usually explains lost points; ``seconds``: wall time of the grading;
    ``sandbox``: what isolated the kernel ("bubblewrap", or "none" when graded without).
    """

    student: str
    assignment: str
    status: str = "FAILED"
    reason: str = ""
    auto_score: float = 0.0
    auto_max: float = 0.0
    manual_max: float = 0.0
    cells: dict[str, tuple[float | None, float]] = field(default_factory=dict)
    first_error: str = ""
    seconds: float = 0.0
    sandbox: str = "none"


def _limit_memory(gigabytes: float) -> None:
    """Cap this process's address space (and so that of every process it starts) at ``gigabytes``."""
    try:
        import resource
    except ImportError:  # not a Unix: no limits to set
        return
    limit = int(gigabytes * 2**30)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)  # a process may lower its limits, never raise them
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _nbgrader_process(
    course: str, calls: list, env: dict, log: str, memory_gb: float | None, settings: dict, sandbox: bool,
) -> None:
    """The body of a grading process: NbGraderAPI ``calls`` [(method, kwargs)] in ``course``.

    The process leads its own process group (so that it can be killed with its kernel), lowers
    its memory limit, sends everything, the kernel's output included, to ``log``, and exits 1 at
    the first call that fails. With ``sandbox``, autograde runs its kernels in the sandbox.
    """
    if hasattr(os, "setsid"):
        os.setsid()
    if sys.platform.startswith("linux"):  # die with the process that started this one (a killed Dask worker)
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if memory_gb is not None:
        _limit_memory(memory_gb)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(course)
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=course).load_config()
    config.merge(Config(settings))
    if sandbox:
        from nbgrader.converters import Autograde
        from nbgrader.preprocessors import Execute

        from dgm.course.sandbox import SandboxedExecute

        steps = Autograde.class_traits()["autograde_preprocessors"].default()
        config.Autograde.autograde_preprocessors = [SandboxedExecute if step is Execute else step for step in steps]
    config.CourseDirectory.root = course
    config.NbGraderAPI.log_level = "WARN"
    api = NbGraderAPI(config=config)
    for method, kwargs in calls:
        outcome = getattr(api, method)(**kwargs)
        print(outcome.get("log", ""), outcome.get("error", ""), sep="\n", flush=True)
        if not outcome["success"]:
            sys.exit(1)


def _processes() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["nbgrader.apps", "dgm.course.sandbox", __name__])
    return context


def run_nbgrader(
    calls: list[tuple[str, dict]], course: Path, log: Path, limits: Limits | None = None, env: dict | None = None,
    sandbox: bool = False,
) -> int | None:
    """Run NbGraderAPI ``calls``, e.g. ``[("autograde", {"assignment_id": ..., "student_id": ...})]``,
    in ``course`` (with its nbgrader_config.py), in a new process that writes its output to ``log``.

    Under ``limits``: their cell timeout, output cap and memory limit, and None is returned if the
    process ran past ``limits.notebook_seconds`` (it is then killed with its process group, the
    kernel included). Otherwise the exit code: 0 if every call succeeded. With ``sandbox``, the
    kernels run in :mod:`dgm.course.sandbox` (its caps from ``limits``).
    """
    log.write_text("")  # there is a log to read even if the process dies before it writes one
    process = _processes().Process(
        target=_nbgrader_process,
        args=(str(course), calls, env or kernel_env(True), str(log), limits.memory_gb if limits else None,
              limits.nbgrader_config() if limits else {}, sandbox),
    )
    process.start()
    process.join(limits.notebook_seconds if limits else None)
    timed_out = process.exitcode is None
    if hasattr(os, "killpg"):  # also ends a kernel that outlived the process
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    process.kill()
    process.join()
    return None if timed_out else process.exitcode


def new_course(course: Path, ids: list[str], root: Path | None = None) -> Path:
    """Lay out a course directory at ``course`` with the repo's config and the sources of ``ids``."""
    root = root or repo_root()
    course.mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / "nbgrader_config.py", course / "nbgrader_config.py")
    for assignment in ids:
        source = source_notebook(assignment, root)
        target = course / "solutions" / assignment
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / source.name)
    return course


def generate_release(course: Path, ids: list[str]) -> None:
    """nbgrader's generate_assignment (forced) for each id, in one process: writes ``course/notebooks/<id>/``."""
    calls = [("generate_assignment", {"assignment_id": assignment, "force": True}) for assignment in ids]
    with tempfile.TemporaryDirectory(prefix="dgm-release-") as tmp:
        log = Path(tmp) / "release.log"
        if run_nbgrader(calls, course, log) != 0:
            raise RuntimeError(f"releasing {', '.join(ids)} failed:\n{log.read_text()}")


def release(root: Path | None = None, ids: list[str] | None = None) -> list[Path]:
    """Regenerate the student release in the repository's ``notebooks/``; return the notebooks written."""
    root = root or repo_root()
    ids = ids or assignment_ids(root)
    generate_release(root, ids)
    (root / "gradebook.db").unlink(missing_ok=True)  # generate_assignment's by-product; the repo keeps none
    return [root / "notebooks" / i / f"{i}.ipynb" for i in ids]


def read_results(course: Path, student: str, assignment: str) -> GradeResult:
    """The scores of ``student`` for ``assignment`` in the course's gradebook (FAILED if absent)."""
    from nbgrader.api import Gradebook, MissingEntry

    result = GradeResult(student, assignment)
    if not (course / "autograded" / student / assignment / f"{assignment}.ipynb").exists():
        result.reason = "nbgrader produced no graded notebook"
        return result
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        try:
            notebook = gradebook.find_submission_notebook(assignment, assignment, student)
        except MissingEntry:
            result.reason = "no submission recorded in the gradebook"
            return result
        for grade in notebook.grades:
            result.cells[grade.name] = (grade.score if not grade.needs_manual_grade else None, grade.max_score)
            if grade.cell.cell_type == "code":
                result.auto_score += grade.score
                result.auto_max += grade.max_score
            else:
                result.manual_max += grade.max_score
    result.status = "graded"
    return result


def first_error(notebook: nbformat.NotebookNode) -> str:
    """``"cell N: Name: message"`` for the first error raised outside the graded test cells, or ``""``."""
    for index, cell in enumerate(notebook.cells):
        grading = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or (grading.get("grade") and not grading.get("solution")):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                message = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip().rstrip(":")
                if output.get("ename") == "KeyboardInterrupt":  # what nbgrader's interrupt raises
                    message += " (the cell ran past the cell timeout and was interrupted)"
                return f"cell {index}: {message}"[:300]
    return ""


def failure_reason(log: str, limits: Limits) -> str:
    """Why nbgrader produced no grade, read from its log, in words an instructor can act on."""
    if "DeadKernelError" in log or "Kernel died" in log or "kernel died" in log:
        return "the kernel died while running the notebook (os._exit, a crash, or memory beyond the limit)"
    if "CellTimeoutError" in log:
        return f"timed out: a cell ran past the {limits.cell_seconds} s cell timeout and ignored the interrupt"
    if "MemoryError" in log:
        return f"out of memory in the grader (limit {limits.memory_gb:g} GB)"
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["nbgrader exited without a message"])[-1][:300]


def gradebook_schema(path: Path) -> set[tuple]:
    """Every entry of a gradebook's ``sqlite_master``: (type, name, table, SQL) of its tables,
    indexes, triggers and views."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as database:
        return set(database.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


def tampering(expected: set[tuple], path: Path) -> str:
    """What in the gradebook at ``path`` nbgrader did not make (``expected``: its schema), or ``""``."""
    found = gradebook_schema(path)
    extra = sorted(f"{kind} {name}" for kind, name, _, _ in found - expected)
    missing = sorted(f"{kind} {name}" for kind, name, _, _ in expected - found)
    return "; ".join(([f"added: {', '.join(extra)}"] if extra else []) + ([f"changed or removed: {', '.join(missing)}"] if missing else []))


def _tail(path: Path, size: int = 65536) -> str:
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", "replace")


def prepare_template(template: Path, ids: list[str], root: Path | None = None) -> set[tuple]:
    """Make the course every grading of ``ids`` starts from, at ``template`` (replaced if there):
    nbgrader_config.py and a gradebook in which nbgrader recorded the assignments; the sources
    are deleted again. Returns the gradebook's schema, against which :func:`tampering` checks."""
    shutil.rmtree(template, ignore_errors=True)
    new_course(template, ids, root)
    generate_release(template, ids)
    shutil.rmtree(template / "solutions")
    shutil.rmtree(template / "notebooks")
    return gradebook_schema(template / "gradebook.db")


def grade_submission(
    template: Path, schema: set[tuple], student: str, assignment: str, notebook: Path, workdir: Path,
    limits: Limits, feedback: bool, threads: int, sandbox: bool,
) -> GradeResult:
    """Grade one notebook in a copy of ``template`` (see :func:`prepare_template`), under ``limits``,
    its kernel using ``threads`` threads (in the sandbox if ``sandbox``). The graded notebook, the
    feedback and the log land under ``workdir`` as ``autograded/``, ``feedback/`` and ``logs/``."""
    start = time.perf_counter()
    result = GradeResult(student, assignment, sandbox="bubblewrap" if sandbox else "none")
    problem = unreadable(notebook)
    if problem:
        result.reason = problem
        return result
    course = workdir / "runs" / f"{student}--{assignment}"
    shutil.rmtree(course, ignore_errors=True)
    course.mkdir(parents=True)
    for name in ("nbgrader_config.py", "gradebook.db"):
        shutil.copy2(template / name, course / name)
    submitted = course / "submitted" / student / assignment
    submitted.mkdir(parents=True)
    shutil.copy2(notebook, submitted / f"{assignment}.ipynb")
    env = dict(kernel_env(True), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    (workdir / "logs").mkdir(exist_ok=True)
    log = workdir / "logs" / f"{student}--{assignment}.log"
    who = {"assignment_id": assignment, "student_id": student}
    calls = [("autograde", dict(who, force=True, create=True))]
    if feedback:
        calls.append(("generate_feedback", dict(who, force=True)))
    code = run_nbgrader(calls, course, log, limits, env, sandbox)
    problem = tampering(schema, course / "gradebook.db")
    if problem:
        result.reason = f"gradebook tampered ({problem})"
    elif code is None:
        result.reason = (
            f"timed out: grading the notebook took longer than {limits.notebook_seconds} s "
            f"(a cell that never ends and ignores interrupts?)"
        )
    else:
        result = read_results(course, student, assignment)
        result.sandbox = "bubblewrap" if sandbox else "none"
        if result.status == "FAILED":
            result.reason = failure_reason(_tail(log), limits)
    if result.status == "graded":
        graded = course / "autograded" / student / assignment
        result.first_error = first_error(nbformat.read(graded / f"{assignment}.ipynb", as_version=4))
        for kind in ("autograded", "feedback"):
            if (course / kind / student / assignment).exists():
                target = workdir / kind / student / assignment
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(course / kind / student / assignment, target, symlinks=True)
    shutil.rmtree(course, ignore_errors=True)
    result.seconds = time.perf_counter() - start
    return result


def autograde(
    submissions: dict[tuple[str, str], Path],
    workdir: Path,
    root: Path | None = None,
    feedback: bool = True,
    limits: Limits = Limits(),
    jobs: int = 1,
    progress: bool = False,
    sandbox: bool = True,
) -> list[GradeResult]:
    """Autograde ``{(student, assignment): notebook path}`` in the fresh folder ``workdir``.

    Runs in fast mode (``DGM_FAST=1``), each submission in its own throwaway course under
    ``limits``, ``jobs`` at a time (each with ``cpu_count // jobs`` threads), each kernel in the
    sandbox of :mod:`dgm.course.sandbox` (:class:`SandboxUnavailable` if this machine cannot make
    it; ``sandbox=False`` grades without isolation). With ``feedback``,
    HTML feedback is written to ``workdir/feedback/<student>/<assignment>/``. Returns one
    result per submission, in the order given; re-running on the same ``workdir`` starts afresh.
    The grading processes are started with :mod:`multiprocessing`, which re-imports a script run
    as ``python script.py``: keep such a script's work under ``if __name__ == "__main__":``.
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs: expected a positive int, got {jobs!r}")
    if sandbox:
        from dgm.course.sandbox import unavailable

        problem = unavailable()
        if problem:
            raise SandboxUnavailable(problem)
    workdir.mkdir(parents=True, exist_ok=True)
    template = workdir / "template"
    schema = prepare_template(template, sorted({assignment for _, assignment in submissions}), root)
    threads = max(1, (os.cpu_count() or 1) // jobs)

    def grade(item: tuple[tuple[str, str], Path]) -> GradeResult:
        (student, assignment), path = item
        result = grade_submission(
            template, schema, student, assignment, Path(path), workdir, limits, feedback, threads, sandbox
        )
        if progress:
            detail = f"{result.auto_score:g}/{result.auto_max:g}" if result.status == "graded" else result.reason
            print(f"  {student:20s} {assignment:20s} {result.status:7s} {detail} ({result.seconds:.0f} s)", flush=True)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(grade, submissions.items()))


def write_gradebook_csv(results: list[GradeResult], path: Path) -> Path:
    """One row per (student, assignment): status, reason, sandbox, points, the first error, and every cell's points."""
    cells = sorted({cell for r in results for cell in r.cells})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["student", "assignment", "status", "reason", "sandbox", "auto_score", "auto_max", "manual_max",
             "first_error", *cells]
        )
        for r in results:
            points = [("" if r.cells.get(c, (None,))[0] is None else r.cells[c][0]) for c in cells]
            writer.writerow(
                [r.student, r.assignment, r.status, r.reason, r.sandbox, r.auto_score, r.auto_max, r.manual_max,
                 r.first_error, *points]
            )
    return path
