"""The student's check before submitting: ``python -m dgm.course validate NOTEBOOK``.

It runs the notebook from top to bottom in a fresh kernel, as the grader will (fast mode), with
nbgrader's :class:`~nbgrader.validator.Validator`, and reports each visible test cell that fails,
with its points and its error, or test cells whose contents were edited (the grader restores
them, so a passing edited test means nothing). Unlike ``nbgrader validate``, whose exit status is
0 even when tests fail, the command exits with 1 when anything fails and 2 when the file is not
a notebook.
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from dgm.course.notebooks import kernel_env, strip_ansi, unreadable


@dataclass
class Validation:
    """What :func:`validate` found. ``failed``: (grade_id, points, error) per failing test cell;
    ``changed``: grade_ids of test cells whose contents differ from the release; ``tests``: grade_id
    -> points of every autograded test cell; ``unanswered``: (grade_id, points) of written answers
    still empty (a reminder: they are graded by hand, not checked here); ``problem``: why the file
    could not be checked."""

    path: Path
    tests: dict[str, float] = field(default_factory=dict)
    failed: list[tuple[str, float, str]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unanswered: list[tuple[str, float]] = field(default_factory=list)
    problem: str = ""

    @property
    def passed(self) -> bool:
        return not (self.problem or self.failed or self.changed)


_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b")


def error_summary(error: str, max_lines: int = 8) -> str:
    """The end of a traceback: from its last ``SomeError: message`` line on (colours removed)."""
    lines = strip_ansi(error).strip().splitlines()
    starts = [i for i, line in enumerate(lines) if _ERROR_LINE.match(line)]
    return "\n".join(lines[starts[-1] if starts else -1 :][:max_lines]) if lines else "(no error message)"


def _graded_cells(notebook: nbformat.NotebookNode) -> dict[str, tuple[str, float, bool]]:
    """stripped source -> (grade_id, points, is an autograded test) of every graded cell."""
    cells = {}
    for cell in notebook.cells:
        grading = cell.metadata.get("nbgrader", {})
        if grading.get("grade"):
            test = cell.cell_type == "code" and not grading.get("solution")
            cells[cell.source.strip()] = (grading.get("grade_id", "?"), float(grading.get("points", 0)), test)
    return cells


def validate(path: str | os.PathLike, fast: bool = True, cell_seconds: int = 300) -> Validation:
    """Run the notebook at ``path`` and check its visible tests (``DGM_FAST=1`` when ``fast``)."""
    from nbgrader.validator import Validator
    from traitlets.config import Config

    path = Path(path).resolve()
    report = Validation(path)
    report.problem = unreadable(path)
    if report.problem:
        return report
    notebook = nbformat.read(path, as_version=4)
    graded = _graded_cells(notebook)
    report.tests = {grade_id: points for grade_id, points, test in graded.values() if test}
    if not report.tests:
        report.problem = "no autograded test cells found: is this a released course notebook?"
        return report
    config = Config({"Execute": {"timeout": cell_seconds, "kernel_name": "python3"}})
    saved = dict(os.environ)
    os.environ.update(kernel_env(fast))  # the kernel inherits DGM_FAST, as it does when graded
    try:
        results = Validator(config=config).validate(str(path))
    except Exception as err:  # e.g. the kernel died: report it, do not crash
        report.problem = f"the notebook could not be run to the end: {type(err).__name__}: {err}"
        return report
    finally:
        os.environ.clear()
        os.environ.update(saved)
    for cell in results.get("type_changed", []) + results.get("changed", []):
        report.changed.append(graded.get(cell["source"], ("a cell that is not in the release",))[0])
    for cell in results.get("failed", []):
        grade_id, points, test = graded.get(cell["source"], ("a cell", 0.0, True))
        if test:
            report.failed.append((grade_id, points, cell.get("raw_error", "").strip()))
        else:
            report.unanswered.append((grade_id, points))
    return report


def describe(report: Validation) -> str:
    """The report as the student reads it."""
    if report.problem:
        return f"CANNOT CHECK {report.path.name}: {report.problem}"
    total = sum(report.tests.values())
    if report.changed:
        return (
            f"EDITED TESTS in {report.path.name}: {', '.join(report.changed)}.\n"
            "The grader puts the original test cells back, so these results would not count. "
            "Restore the cells (copy them from a fresh copy of the notebook) and run again."
        )
    if report.failed:
        lost = sum(points for _, points, _ in report.failed)
        lines = [
            f"FAILED: {len(report.failed)} of {len(report.tests)} test cells fail in {report.path.name} "
            f"({lost:g} of {total:g} autograded points)."
        ]
        for grade_id, points, error in report.failed:
            lines.append(f"\n- {grade_id} ({points:g} points):")
            lines.append(textwrap.indent(error_summary(error), "    "))
        return "\n".join(lines) + _reminder(report)
    return (
        f"PASSED: all {len(report.tests)} visible test cells pass in {report.path.name} ({total:g} autograded points).\n"
        "Hidden tests run when the notebook is graded and may still find mistakes; written answers are graded by hand."
        + _reminder(report)
    )


def _reminder(report: Validation) -> str:
    if not report.unanswered:
        return ""
    cells = ", ".join(f"{grade_id} ({points:g} points)" for grade_id, points in report.unanswered)
    return f"\nWritten answers still empty: {cells}."
