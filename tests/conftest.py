"""Shared fixtures. Tests run on the CPU unless DGM_DEVICE says otherwise."""

from __future__ import annotations

import html
import os
import re
import socket
import sysconfig
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from corpus import make_corpus
from corpus.make_corpus import ASSIGNMENT, CASES, ESCAPE, PORT
from dgm.course import grading
from dgm.course.notebooks import assignment_ids, hidden_test_span, source_notebook, strip_hidden_tests

ROOT = Path(__file__).resolve().parents[1]
# Limits for grading the corpus: its notebook runs in well under 20 s in fast mode; the memory hog stops at 3 GB.
LIMITS = grading.Limits(cell_seconds=20, notebook_seconds=75, memory_gb=3.0, output_lines=500, disk_mb=64, processes=128)
# Where writes_outside tries to leave a file, seen from the host.
OUTSIDE = [ROOT / "lib" / "dgm", Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["purelib"]) / "nbgrader",
           Path.home(), Path("~root").expanduser(), Path(tempfile.gettempdir()), Path("/")]


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


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """The corpus of broken and hostile submissions (tests/corpus/) graded here in one batch under
    :data:`LIMITS`: (work folder, {case: GradeResult}, connections the network case made to PORT)."""
    work = tmp_path_factory.mktemp("corpus-grading")
    for folder in OUTSIDE:
        (folder / ESCAPE).unlink(missing_ok=True)
    submissions = {(case, ASSIGNMENT): make_corpus.SUBMISSIONS / case / ASSIGNMENT / f"{ASSIGNMENT}.ipynb" for case in CASES}
    with socket.create_server(("127.0.0.1", PORT)) as listener:  # the network case knocks here
        results = grading.autograde(submissions, work, ROOT, feedback=True, limits=LIMITS, jobs=2)
        listener.setblocking(False)
        try:
            knocked = [listener.accept()[1]]
        except BlockingIOError:
            knocked = []
    return work, {r.student: r for r in results}, knocked


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    """A data cache with no MNIST in it and downloads that fail at once (offline)."""
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("network disabled in this test")

    from dgm import data

    monkeypatch.setenv("DGM_DATA", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(data, "_FALLBACK_WARNED", [])  # a fresh process: the fallback has not warned yet
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
