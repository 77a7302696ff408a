"""Release and autograde with nbgrader, in a throwaway course directory.

Grading never happens inside the repository. :func:`autograde` builds a fresh
course directory (``nbgrader_config.py`` + the needed ``solutions/<id>/``),
lets nbgrader record the assignments in a new gradebook, deletes the sources
again, and only then copies the submissions in and runs them. So a submission
cannot read ``solutions/``, the instructor's gradebook, or the other
assignments' sources, and graded runs never touch ``notebooks/``.

Every submission ends as a :class:`GradeResult`: ``graded`` with per-cell
points, or ``FAILED`` with the reason (never a silent 0).
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dgm.course.notebooks import assignment_ids, kernel_env, repo_root, source_notebook


@dataclass
class GradeResult:
    """The outcome of grading one student's notebook for one assignment.

    ``auto_score``/``auto_max``: points of autograded test cells; ``manual_max``:
    points that need a human (written answers); ``cells``: grade_id -> (score or
    None if not graded yet, max points).
    """

    student: str
    assignment: str
    status: str = "FAILED"
    reason: str = ""
    auto_score: float = 0.0
    auto_max: float = 0.0
    manual_max: float = 0.0
    cells: dict[str, tuple[float | None, float]] = field(default_factory=dict)


def run_nbgrader(args: list[str], course: Path, fast: bool = True) -> subprocess.CompletedProcess:
    """Run ``nbgrader <args>`` in ``course`` (so it reads that folder's nbgrader_config.py)."""
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"],
        cwd=course,
        env=kernel_env(fast),
        capture_output=True,
        text=True,
    )


def _checked(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


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
    """``nbgrader generate_assignment --force`` for each id: writes ``course/notebooks/<id>/``."""
    for assignment in ids:
        _checked(run_nbgrader(["generate_assignment", assignment, "--force"], course), f"releasing {assignment}")


def release(root: Path | None = None, ids: list[str] | None = None) -> list[Path]:
    """Regenerate the student release in the repository's ``notebooks/``; return the notebooks written."""
    root = root or repo_root()
    ids = ids or assignment_ids(root)
    generate_release(root, ids)
    (root / "gradebook.db").unlink(missing_ok=True)  # generate_assignment's by-product; the repo keeps none
    return [root / "notebooks" / i / f"{i}.ipynb" for i in ids]


def read_results(course: Path, students: list[str], assignment: str) -> list[GradeResult]:
    """Scores of ``students`` for ``assignment`` from the course's gradebook (FAILED if absent)."""
    from nbgrader.api import Gradebook, MissingEntry

    results = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in students:
            result = GradeResult(student, assignment)
            autograded = course / "autograded" / student / assignment / f"{assignment}.ipynb"
            if not autograded.exists():
                result.reason = "nbgrader produced no graded notebook (see the grading log)"
                results.append(result)
                continue
            try:
                notebook = gradebook.find_submission_notebook(assignment, assignment, student)
            except MissingEntry:
                result.reason = "no submission recorded in the gradebook"
                results.append(result)
                continue
            for grade in notebook.grades:
                automatic = grade.cell.cell_type == "code"
                result.cells[grade.name] = (grade.score if not grade.needs_manual_grade else None, grade.max_score)
                if automatic:
                    result.auto_score += grade.score
                    result.auto_max += grade.max_score
                else:
                    result.manual_max += grade.max_score
            result.status = "graded"
            results.append(result)
    return results


def autograde(
    submissions: dict[tuple[str, str], Path],
    workdir: Path,
    root: Path | None = None,
    feedback: bool = True,
) -> list[GradeResult]:
    """Autograde ``{(student, assignment): notebook path}`` in the fresh course ``workdir``.

    Runs in fast mode (``DGM_FAST=1``). With ``feedback``, HTML feedback is
    written to ``workdir/feedback/<student>/<assignment>/``. Returns one result
    per submission, in the order given.
    """
    ids = sorted({assignment for _, assignment in submissions})
    course = new_course(workdir, ids, root)
    generate_release(course, ids)
    shutil.rmtree(course / "solutions")
    shutil.rmtree(course / "notebooks")
    for (student, assignment), path in submissions.items():
        target = course / "submitted" / student / assignment
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / f"{assignment}.ipynb")
    results: dict[tuple[str, str], GradeResult] = {}
    for assignment in ids:
        students = [s for s, a in submissions if a == assignment]
        log = run_nbgrader(["autograde", assignment, "--create", "--force"], course)
        (course / f"autograde-{assignment}.log").write_text(log.stdout + log.stderr)
        if feedback:
            run_nbgrader(["generate_feedback", assignment, "--force"], course)
        for result in read_results(course, students, assignment):
            if result.status == "FAILED":
                result.reason += f": {_last_error(log.stderr)}"
            results[(result.student, assignment)] = result
    return [results[key] for key in submissions]


def _last_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no log output"])[-1][:300]


def write_gradebook_csv(results: list[GradeResult], path: Path) -> Path:
    """One row per (student, assignment): status, reason, points, and every cell's points."""
    cells = sorted({cell for r in results for cell in r.cells})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "assignment", "status", "reason", "auto_score", "auto_max", "manual_max", *cells])
        for r in results:
            points = [("" if r.cells.get(c, (None,))[0] is None else r.cells[c][0]) for c in cells]
            writer.writerow([r.student, r.assignment, r.status, r.reason, r.auto_score, r.auto_max, r.manual_max, *points])
    return path
