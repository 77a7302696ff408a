"""Shared fixtures. Tests run on the CPU unless DGM_DEVICE says otherwise."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from dgm.course import grading
from dgm.course.notebooks import assignment_ids, hidden_test_span, source_notebook, strip_hidden_tests

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """Every assignment released into a throwaway course, and each solution and blank release
    autograded in fast mode with feedback (shared by the pipeline and book tests: the graded
    solutions are the executed notebooks the book is built from)."""
    ids = assignment_ids(ROOT)
    work = tmp_path_factory.mktemp("pipeline")
    course = grading.new_course(work / "release", ids, ROOT)
    grading.generate_release(course, ids)
    submissions = {}
    for assignment in ids:
        submissions[("solution", assignment)] = source_notebook(assignment, ROOT)
        submissions[("blank", assignment)] = course / "notebooks" / assignment / f"{assignment}.ipynb"
    results = grading.autograde(submissions, work / "grade", ROOT, feedback=True, jobs=2)
    return SimpleNamespace(
        release=course / "notebooks",
        graded=work / "grade",
        results={(r.student, r.assignment): r for r in results},
    )


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    """A data cache with no MNIST in it and downloads that fail at once (offline)."""
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setenv("DGM_DATA", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return tmp_path


def shared_mnist() -> Path | None:
    """The MNIST mirror if DGM_DATA points at one (as CI does), else None."""
    folder = Path(os.environ.get("DGM_DATA", "/nonexistent")) / "mnist"
    return folder if (folder / "t10k-images-idx3-ubyte.gz").exists() else None


def hidden_lines_of(nb) -> list[str]:
    """The distinctive lines inside hidden-test regions that appear nowhere else in the notebook."""
    lines, visible = [], set()
    for cell in nb.cells:
        visible.update(line.strip() for line in strip_hidden_tests(cell.source).splitlines())
        span = hidden_test_span(cell.source)
        if span:
            body = cell.source.splitlines()[span[0] : span[1] - 1]
            lines += [line.strip() for line in body if len(line.strip()) > 25]
    return [line for line in lines if line not in visible]


def page_text(path: Path) -> str:
    """The text a reader sees on an HTML page (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))
