"""Grading that survives broken and hostile submissions, and the student's validate command.

The corpus (tests/corpus/, built by make_corpus.py from the released notebook) is graded in one
batch, with limits small enough for a test, every kernel in the bubblewrap sandbox; every case must
end as the corpus says: graded with exactly the expected test cells lost, or FAILED with the
expected reason. No feedback page may show hidden-test text, the gradebook CSV has one row per
case, and grading again gives the same. The attacks on the machine are checked on the host after
the batch: no file written outside, no process left, no connection made, caps hit.
"""

from __future__ import annotations

import csv
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import LIMITS, OUTSIDE, ROOT, hidden_lines_of, page_text
from corpus import make_corpus
from corpus.make_corpus import ASSIGNMENT, CASES, ESCAPE, FROM_BLANK, SURVIVOR
from dgm.course import grading, sandbox
from dgm.course.notebooks import source_notebook
from dgm.course.validation import describe, error_summary, validate

pytestmark = pytest.mark.pipeline


def processes_with(argument: str) -> list[str]:
    """Command lines of the host's processes that have ``argument`` among their arguments."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or gone
            continue
        if argument.encode() in arguments:
            found.append(" ".join(a.decode(errors="replace") for a in arguments))
    return found


def output_of(work: Path, case: str) -> str:
    """Every text output of ``case``'s graded notebook."""
    notebook = nbformat.read(work / "autograded" / case / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    return "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))


def test_the_committed_corpus_is_what_the_script_builds_from_the_current_release(tmp_path):
    fresh = make_corpus.build(tmp_path / "submissions", ROOT)
    for case, path in fresh.items():
        committed = make_corpus.SUBMISSIONS / case / ASSIGNMENT / path.name
        assert committed.read_text() == path.read_text(), (
            f"tests/corpus/submissions/{case} is stale: run `python tests/corpus/make_corpus.py` and commit it"
        )


@pytest.mark.parametrize("case", list(CASES))
def test_each_submission_ends_as_the_corpus_expects(graded, case):
    _, results, _ = graded
    expected, result = CASES[case], results[case]
    assert result.status == expected.status, f"{case} ({expected.what}): {result.status} {result.reason}"
    if expected.status == "FAILED":
        assert expected.reason in result.reason, f"{case}: reason {result.reason!r}"
        assert not result.cells, "a FAILED submission has no per-cell points (not a silent 0)"
        return
    tests = {name: (score, top) for name, (score, top) in result.cells.items() if name.startswith("test_")}
    assert tests and result.auto_max == sum(top for _, top in tests.values())
    for name, (score, top) in tests.items():
        lost = name in expected.lost or expected.lost == ("*",)
        assert score == (0 if lost else top), f"{case}: {name} scored {score} of {top}, expected {0 if lost else top}"
    written = [score for name, (score, _) in result.cells.items() if not name.startswith("test_")]
    if case in FROM_BLANK:  # nbgrader scores an untouched written answer 0 by itself
        assert written and all(score == 0 for score in written)
    else:
        assert written and all(score is None for score in written), "written answers wait for a human grader"
    if expected.first_error:
        assert expected.first_error in result.first_error, f"{case}: first error {result.first_error!r}"
    elif case == "correct":
        assert result.first_error == ""


def test_no_feedback_page_shows_hidden_tests_and_floods_are_cut(graded):
    work, results, _ = graded
    hidden = hidden_lines_of(nbformat.read(source_notebook(ASSIGNMENT, ROOT), 4))
    assert hidden
    for case, result in results.items():
        page = work / "feedback" / case / ASSIGNMENT / f"{ASSIGNMENT}.html"
        assert page.exists() == (result.status == "graded"), f"{case}: feedback only for graded submissions"
        if page.exists():
            text = page_text(page)
            assert "HIDDEN TESTS" not in text and not [line for line in hidden if line in text], case
    flooded = nbformat.read(work / "autograded" / "output_flood" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    lines = sum(len(o.get("text", "").splitlines()) for c in flooded.cells for o in c.get("outputs", []))
    assert lines < 2 * LIMITS.output_lines, f"200,000 printed lines should be cut to about {LIMITS.output_lines}"


def test_the_gradebook_has_a_row_and_a_status_per_submission(graded, tmp_path):
    _, results, _ = graded
    path = grading.write_gradebook_csv(list(results.values()), tmp_path / "grades.csv")
    rows = list(csv.DictReader(path.open()))
    assert {row["student"]: row["status"] for row in rows} == {case: CASES[case].status for case in CASES}
    assert {row["sandbox"] for row in rows} == {"bubblewrap"}
    correct = next(row for row in rows if row["student"] == "correct")
    assert float(correct["auto_score"]) == float(correct["auto_max"]) == results["correct"].auto_max > 0
    assert float(correct[f"test_{make_corpus.LAST_ANSWER}"]) > 0
    hog = next(row for row in rows if row["student"] == "memory_hog")
    assert "MemoryError" in hog["first_error"]


def test_grading_again_in_the_same_folder_gives_the_same_results(graded):
    work, results, _ = graded
    again = {(case, ASSIGNMENT): make_corpus.SUBMISSIONS / case / ASSIGNMENT / f"{ASSIGNMENT}.ipynb" for case in ("hard_coded", "corrupt")}
    for result in grading.autograde(again, work, ROOT, feedback=True, limits=LIMITS):
        before = results[result.student]
        assert (result.status, result.reason, result.cells) == (before.status, before.reason, before.cells)


def test_nothing_a_submission_writes_reaches_the_host(graded):
    assert graded[1]["writes_outside"].status == "graded"
    written = [str(folder / ESCAPE) for folder in OUTSIDE if (folder / ESCAPE).exists()]
    assert not written, f"a submission wrote outside its sandbox: {written}"


def test_no_process_a_submission_starts_outlives_the_batch(graded):
    assert graded[1]["survives_grading"].status == "graded"
    assert not processes_with(SURVIVOR), "processes started by a submission are still running"


def test_a_submission_cannot_reach_the_hosts_loopback(graded):
    work, results, knocked = graded
    assert results["network"].status == "graded" and not knocked, f"connections from the sandbox: {knocked}"
    assert "no connection" in output_of(work, "network")


def test_the_fork_bomb_and_the_disk_filler_hit_their_caps(graded):
    work, _, _ = graded
    forked = int(re.search(r"forked (\d+) children", output_of(work, "fork_bomb")).group(1))
    assert 0 < forked < LIMITS.processes
    written = int(re.search(r"wrote (\d+) MB", output_of(work, "disk_filler")).group(1))
    assert 0 < written <= LIMITS.disk_mb


def test_the_sandbox_reads_nothing_of_the_repository_but_the_library_and_shipped_data():
    readable = [Path(p) for p in sandbox.readable_paths()]
    for secret in (ROOT / "solutions", ROOT / "tests", ROOT / "notebooks", ROOT / ".git", Path.home()):
        assert not [p for p in readable if p == secret or p in secret.parents], f"{secret} is visible in the sandbox"
    for shipped in (ROOT / "lib" / "dgm", ROOT / "data" / "checkpoints", ROOT / "data" / "corpus"):
        assert shipped in readable, f"{shipped} is not readable in the sandbox"


def test_a_gradebook_with_anything_nbgrader_did_not_make_is_tampered(tmp_path):
    course = grading.new_course(tmp_path / "course", [ASSIGNMENT], ROOT)
    grading.generate_release(course, [ASSIGNMENT])
    gradebook = course / "gradebook.db"
    schema = grading.gradebook_schema(gradebook)
    with sqlite3.connect(gradebook) as db:
        db.execute("UPDATE grade_cells SET max_score = max_score")  # data is nbgrader's business, not the schema
    assert grading.tampering(schema, gradebook) == ""
    with sqlite3.connect(gradebook) as db:
        db.execute("CREATE TRIGGER full AFTER INSERT ON grade BEGIN UPDATE grade SET auto_score = 99; END")
        db.execute("CREATE VIEW peek AS SELECT * FROM source_cell")
    assert grading.tampering(schema, gradebook) == "added: trigger full, view peek"


def test_grading_without_bubblewrap_stops_with_a_clear_message(tmp_path):
    (tmp_path / "alice" / ASSIGNMENT).mkdir(parents=True)
    (tmp_path / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text("{}")
    no_bwrap = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    run = subprocess.run([sys.executable, "-m", "dgm.course", "grade", str(tmp_path), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, env=no_bwrap)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "bubblewrap" in run.stderr and "--no-sandbox" in run.stderr and not (tmp_path / "out").exists()


def test_autograde_rejects_a_bad_job_count(tmp_path):
    with pytest.raises(ValueError, match="jobs"):
        grading.autograde({}, tmp_path, ROOT, jobs=0)


def test_a_release_that_fails_raises_with_nbgraders_words(tmp_path):
    course = grading.new_course(tmp_path / "course", [], ROOT)
    with pytest.raises(RuntimeError, match="(?s)releasing no_such_assignment failed.*no_such_assignment"):
        grading.generate_release(course, ["no_such_assignment"])


def test_failure_reasons_name_the_cause():
    limits = grading.Limits(memory_gb=2)
    assert "kernel died" in grading.failure_reason("nbclient.exceptions.DeadKernelError: Kernel died", limits)
    assert "2 GB" in grading.failure_reason("Traceback ...\nMemoryError", limits)
    assert "cell timeout" in grading.failure_reason("nbclient.exceptions.CellTimeoutError: A cell timed out", limits)
    assert grading.failure_reason("", limits) == "nbgrader exited without a message"


def test_validate_passes_a_correct_notebook_and_reports_failing_tests_with_points():
    correct = validate(make_corpus.SUBMISSIONS / "correct" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    assert correct.passed and "PASSED" in describe(correct)
    wrong = validate(make_corpus.SUBMISSIONS / "hard_coded" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    assert wrong.passed, "hard-coding passes the visible tests: only the hidden ones (at grading) catch it"


def test_validate_flags_edited_tests_and_unreadable_files(tmp_path):
    edited = validate(make_corpus.SUBMISSIONS / "edited_test" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    assert edited.changed == ["test_random_turn_path"] and "EDITED TESTS" in describe(edited)
    corrupt = validate(make_corpus.SUBMISSIONS / "corrupt" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    assert not corrupt.passed and "not a readable notebook" in describe(corrupt)


def test_the_validate_command_exits_non_zero_and_lists_each_failing_test_with_its_points():
    blank = ROOT / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    run = subprocess.run([sys.executable, "-m", "dgm.course", "validate", str(blank)], capture_output=True, text=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED: 5 of 5 test cells" in run.stdout and "(13 of 13 autograded points)" in run.stdout
    assert "- test_random_turn_path (3 points):" in run.stdout and "NotImplementedError" in run.stdout
    missing = subprocess.run([sys.executable, "-m", "dgm.course", "validate", "nope.ipynb"], capture_output=True, text=True)
    assert missing.returncode == 2 and "no such file" in missing.stdout


def test_error_summary_keeps_the_last_error_and_its_message():
    traceback = "\x1b[0;31mTraceback\x1b[0m\nFile x, line 3\nValueError: first\nduring handling\nAssertionError: the mean\nis wrong"
    assert error_summary(traceback) == "AssertionError: the mean\nis wrong"
    assert error_summary("") == "(no error message)"
