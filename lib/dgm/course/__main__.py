"""Command line for the course pipeline (used by the Makefile).

    python -m dgm.course course [--full] [--no-sandbox] [IDS...]   the main job: execute, release, grade
    python -m dgm.course release [IDS...]           regenerate notebooks/ from solutions/
    python -m dgm.course check [--no-sandbox] [IDS...]   grade solution and blank release (no repo changes)
    python -m dgm.course grade SUBMISSIONS [--out DIR] [--jobs N] [--cell-timeout S] [--notebook-timeout S]
                               [--memory-gb G] [--disk-mb M] [--processes P] [--no-sandbox]
                               [--scheduler tcp://HOST:8786] [--resume]
                                                    autograde <SUBMISSIONS>/<student>/<id>/<id>.ipynb
    python -m dgm.course validate NOTEBOOK          a student's check: run it, report failing tests (exit 1)
    python -m dgm.course book [--full]              the self-study site in build/book/html/ (see dgm.course.book)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from dgm.course import batch, grading
from dgm.course.notebooks import (
    assignment_ids,
    execute_notebook,
    repo_root,
    source_notebook,
)


# Notebooks graded side by side by `make course` and `check`: on 2 cores 4 jobs grade the 8 solutions in
# 2.6 minutes against 5.7 one at a time (bench/bench_grading.py; fast mode trains for fixed seconds, which overlap).
COURSE_JOBS = 4


def grade_solution_and_blank(ids: list[str], blanks: dict[str, Path], workdir: Path, sandbox: bool) -> dict[str, dict]:
    """Autograde each solution and its blank release (in the sandbox unless ``sandbox`` is False);
    return per-id scores."""
    submissions = {}
    for assignment in ids:
        submissions[("solution", assignment)] = source_notebook(assignment)
        submissions[("blank", assignment)] = blanks[assignment]
    table: dict[str, dict] = {assignment: {} for assignment in ids}
    print(f"  {len(submissions)} notebooks, {COURSE_JOBS} at a time:", flush=True)
    results = grading.autograde(submissions, workdir, feedback=False, jobs=COURSE_JOBS, progress=True, sandbox=sandbox)
    for result in results:
        table[result.assignment][result.student] = result
    return table


def print_table(rows: list[dict]) -> None:
    header = ["assignment", "execute (s)", "solution", "blank", "max (auto)", "manual", "ok"]
    lines = [header] + [[str(row[key]) for key in header] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for index, line in enumerate(lines):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")


def summarize(ids: list[str], scores: dict[str, dict], seconds: dict[str, float | None]) -> list[dict]:
    """Rows of the course table; ``ok`` means solution = max > 0, blank = 0, and it executed."""
    rows = []
    for assignment in ids:
        solution, blank = scores[assignment]["solution"], scores[assignment]["blank"]
        ok = (
            seconds.get(assignment, 0.0) is not None
            and solution.status == "graded"
            and blank.status == "graded"
            and solution.auto_score == solution.auto_max > 0
            and blank.auto_score == 0
        )
        runtime = seconds.get(assignment)
        rows.append(
            {
                "assignment": assignment,
                "execute (s)": "FAILED" if runtime is None else ("-" if runtime == 0.0 else f"{runtime:.0f}"),
                "solution": f"{solution.auto_score:g}" if solution.status == "graded" else f"FAILED ({solution.reason})",
                "blank": f"{blank.auto_score:g}" if blank.status == "graded" else f"FAILED ({blank.reason})",
                "max (auto)": f"{solution.auto_max:g}",
                "manual": f"{solution.manual_max:g}",
                "ok": "yes" if ok else "NO",
                "passed": ok,
            }
        )
    return rows


def command_course(args) -> int:
    root = repo_root()
    ids = args.ids or assignment_ids(root)
    executed = root / "build" / "executed"
    seconds: dict[str, float | None] = {}
    if args.full:  # grading runs in fast mode: the full budgets need runs of their own
        for assignment in ids:
            print(f"executing {assignment} (full mode) ...", flush=True)
            try:
                seconds[assignment] = execute_notebook(source_notebook(assignment), executed / f"{assignment}.ipynb", fast=False)
            except Exception as err:  # report every notebook, then fail
                seconds[assignment] = None
                print(f"  {assignment} FAILED to execute: {str(err)[-2000:]}", file=sys.stderr)
    print("regenerating the student release in notebooks/ ...", flush=True)
    released = dict(zip(ids, grading.release(root, ids)))
    print("autograding solutions and blank releases in a throwaway gradebook ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="dgm-grade-") as workdir:
        course = Path(workdir) / "course"
        scores = grade_solution_and_blank(ids, released, course, not args.no_sandbox)
        if not args.full:  # in fast mode a solution's graded run is its executed notebook: each runs once
            executed.mkdir(parents=True, exist_ok=True)
            for assignment in ids:
                graded = course / "autograded" / "solution" / assignment / f"{assignment}.ipynb"
                solution = scores[assignment]["solution"]
                seconds[assignment] = solution.seconds if solution.status == "graded" and graded.exists() else None
                if seconds[assignment] is not None:
                    shutil.copyfile(graded, executed / f"{assignment}.ipynb")
    print(f"executed notebooks: {executed} (`make book` renders them as the site without running them again)\n")
    rows = summarize(ids, scores, seconds)
    print_table(rows)
    return 0 if all(row["passed"] for row in rows) else 1


def command_release(args) -> int:
    for path in grading.release(ids=args.ids or None):
        print(f"wrote {path.relative_to(repo_root())}")
    return 0


def command_check(args) -> int:
    ids = args.ids or assignment_ids()
    with tempfile.TemporaryDirectory(prefix="dgm-check-") as tmp:
        course = grading.new_course(Path(tmp) / "release", ids)
        grading.generate_release(course, ids)
        blanks = {i: course / "notebooks" / i / f"{i}.ipynb" for i in ids}
        start = time.perf_counter()
        scores = grade_solution_and_blank(ids, blanks, Path(tmp) / "grade", not args.no_sandbox)
        print(f"graded in {time.perf_counter() - start:.0f} s")
    rows = summarize(ids, scores, {i: 0.0 for i in ids})
    print_table(rows)
    return 0 if all(row["passed"] for row in rows) else 1


def command_grade(args) -> int:
    folder = Path(args.submissions).resolve()
    if not folder.is_dir():
        print(f"SUBMISSIONS: {folder} is not a folder of <student>/<assignment>/<assignment>.ipynb", file=sys.stderr)
        return 2
    known = set(assignment_ids())
    submissions, skipped = {}, []
    for path in sorted(folder.glob("*/*/*.ipynb")):
        student, assignment = path.parent.parent.name, path.parent.name
        if assignment in known and path.stem == assignment:
            submissions[(student, assignment)] = path
        else:
            skipped.append(path)
    for path in skipped:
        print(f"skipped {path.relative_to(folder)} (expected <student>/<assignment>/<assignment>.ipynb "
              f"with a known assignment)", file=sys.stderr)
    if not submissions:
        print(f"no submissions found under {folder} (expected <student>/<assignment>/<assignment>.ipynb)", file=sys.stderr)
        return 2
    limits = grading.Limits(
        cell_seconds=args.cell_timeout, notebook_seconds=args.notebook_timeout, memory_gb=args.memory_gb,
        disk_mb=args.disk_mb, processes=args.processes,
    )
    out = Path(args.out).resolve()
    if args.no_sandbox:
        print("grading WITHOUT the sandbox (--no-sandbox)", flush=True)
    start = time.perf_counter()
    try:
        results = batch.grade_batch(submissions, out, scheduler=args.scheduler, jobs=args.jobs, limits=limits,
                                    sandbox=not args.no_sandbox, resume=args.resume)
    except batch.ClusterError as err:
        print(f"cannot grade on {args.scheduler}: {err}", file=sys.stderr)
        return 2
    failed = sum(r.status != "graded" for r in results)
    print(f"{len(results) - failed} graded, {failed} FAILED in {time.perf_counter() - start:.0f} s")
    print(f"gradebook: {out / 'grades.csv'}\nfeedback:  {out / 'feedback'}\nlog:       {out / 'grading.log'}")
    return 0


def command_validate(args) -> int:
    from dgm.course.validation import describe, validate

    print(f"running {args.notebook} from the top in a fresh kernel (fast mode), as the grader will ...", flush=True)
    report = validate(args.notebook, cell_seconds=args.cell_timeout)
    print(describe(report))
    return 2 if report.problem else (0 if report.passed else 1)


def command_book(args) -> int:
    from dgm.course import book

    from nbclient.exceptions import CellExecutionError

    root = repo_root()
    executed = {}
    for assignment in assignment_ids(root):
        try:
            executed[assignment] = book.executed_notebook(assignment, root / "build" / "executed", fast=not args.full)
        except CellExecutionError as err:
            print(f"{assignment} FAILED to execute, so no book was built: {str(err)[-2000:]}", file=sys.stderr)
            return 1
    index = book.build_book(executed, root / "build" / "book", root)
    print(f"the book: {index}\nopen it in a browser, or serve it: python -m http.server -d {index.parent}")
    return 0


NO_SANDBOX = "run the kernels without the bubblewrap sandbox (unsafe for students' code; for machines without bubblewrap)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dgm.course", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    course = commands.add_parser("course", help="execute, release and grade every assignment")
    course.add_argument("--full", action="store_true", help="full training budgets (default: DGM_FAST=1)")
    course.add_argument("--no-sandbox", action="store_true", help=NO_SANDBOX)
    course.add_argument("ids", nargs="*")
    course.set_defaults(run=command_course)
    release = commands.add_parser("release", help="regenerate notebooks/ from solutions/")
    release.add_argument("ids", nargs="*")
    release.set_defaults(run=command_release)
    check = commands.add_parser("check", help="grade solution and blank release without touching the repo")
    check.add_argument("--no-sandbox", action="store_true", help=NO_SANDBOX)
    check.add_argument("ids", nargs="*")
    check.set_defaults(run=command_check)
    grade = commands.add_parser("grade", help="autograde a folder of submissions")
    grade.add_argument("submissions")
    grade.add_argument("--out", default="build/grades")
    defaults = grading.Limits()
    grade.add_argument("--jobs", type=int, default=1, help="submissions graded side by side (default 1)")
    grade.add_argument("--cell-timeout", type=int, default=defaults.cell_seconds, help="seconds per cell")
    grade.add_argument("--notebook-timeout", type=int, default=defaults.notebook_seconds, help="seconds per notebook")
    grade.add_argument("--memory-gb", type=float, default=defaults.memory_gb, help="memory limit of the kernel")
    grade.add_argument("--disk-mb", type=int, default=defaults.disk_mb, help="what the kernel may write, in MB")
    grade.add_argument("--processes", type=int, default=defaults.processes, help="processes and threads of the kernel")
    grade.add_argument("--no-sandbox", action="store_true", help=NO_SANDBOX)
    grade.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on the workers of this Dask scheduler, e.g. tcp://host:8786 (default: here)")
    grade.add_argument("--resume", action="store_true",
                       help="skip submissions already graded under --out (same notebook, same course version)")
    grade.set_defaults(run=command_grade)
    validate = commands.add_parser("validate", help="run a notebook and report its failing tests (exit 1 if any)")
    validate.add_argument("notebook")
    validate.add_argument("--cell-timeout", type=int, default=defaults.cell_seconds, help="seconds per cell")
    validate.set_defaults(run=command_validate)
    book = commands.add_parser("book", help="build the self-study site from the executed solution notebooks")
    book.add_argument("--full", action="store_true", help="execute missing notebooks with full budgets (default: fast)")
    book.set_defaults(run=command_book)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except grading.SandboxUnavailable as err:
        print(f"cannot grade: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
