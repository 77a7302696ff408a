"""Command line for the course pipeline (used by the Makefile).

    python -m dgm.course course [--full] [IDS...]   the main job: execute, release, grade, render
    python -m dgm.course release [IDS...]           regenerate notebooks/ from solutions/
    python -m dgm.course check [IDS...]             grade solution and blank release (no repo changes)
    python -m dgm.course grade SUBMISSIONS [--out DIR]
                                                    autograde <SUBMISSIONS>/<student>/<id>/<id>.ipynb
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from dgm.course import grading
from dgm.course.notebooks import (
    assignment_ids,
    execute_notebook,
    notebook_title,
    render_html,
    repo_root,
    source_notebook,
)


def grade_solution_and_blank(ids: list[str], blanks: dict[str, Path], workdir: Path) -> dict[str, dict]:
    """Autograde each solution and its blank release; return per-id scores."""
    submissions = {}
    for assignment in ids:
        submissions[("solution", assignment)] = source_notebook(assignment)
        submissions[("blank", assignment)] = blanks[assignment]
    table: dict[str, dict] = {assignment: {} for assignment in ids}
    for result in grading.autograde(submissions, workdir, feedback=False):
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
    build = root / "build"
    seconds: dict[str, float | None] = {}
    executed = []
    for assignment in ids:
        target = build / "executed" / f"{assignment}.ipynb"
        print(f"executing {assignment} ({'full' if args.full else 'fast'} mode) ...", flush=True)
        try:
            seconds[assignment] = execute_notebook(source_notebook(assignment), target, fast=not args.full)
            executed.append(target)
        except Exception as err:  # report every notebook, then fail
            seconds[assignment] = None
            print(f"  {assignment} FAILED to execute: {str(err)[-2000:]}", file=sys.stderr)
    print("regenerating the student release in notebooks/ ...", flush=True)
    released = dict(zip(ids, grading.release(root, ids)))
    print("autograding solutions and blank releases in a throwaway gradebook ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="dgm-grade-") as workdir:
        scores = grade_solution_and_blank(ids, released, Path(workdir) / "course")
    index = render_html(executed, build / "html", {p.stem: notebook_title(p) for p in executed})
    print(f"rendered {len(executed)} notebooks: {index}\n")
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
        scores = grade_solution_and_blank(ids, blanks, Path(tmp) / "grade")
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
    submissions = {}
    for path in sorted(folder.glob("*/*/*.ipynb")):
        student, assignment = path.parent.parent.name, path.parent.name
        if assignment in known and path.stem == assignment:
            submissions[(student, assignment)] = path
    if not submissions:
        print(f"no submissions found under {folder} (expected <student>/<assignment>/<assignment>.ipynb)", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    with tempfile.TemporaryDirectory(prefix="dgm-grade-") as tmp:
        results = grading.autograde(submissions, Path(tmp) / "course")
        if (Path(tmp) / "course" / "feedback").exists():
            shutil.copytree(Path(tmp) / "course" / "feedback", out / "feedback", dirs_exist_ok=True)
    csv_path = grading.write_gradebook_csv(results, out / "grades.csv")
    for r in results:
        detail = f"{r.auto_score:g}/{r.auto_max:g} auto" if r.status == "graded" else r.reason
        print(f"{r.student:20s} {r.assignment:20s} {r.status:8s} {detail}")
    print(f"gradebook: {csv_path}\nfeedback:  {out / 'feedback'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dgm.course", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    course = commands.add_parser("course", help="execute, release, grade and render every assignment")
    course.add_argument("--full", action="store_true", help="full training budgets (default: DGM_FAST=1)")
    course.add_argument("ids", nargs="*")
    course.set_defaults(run=command_course)
    release = commands.add_parser("release", help="regenerate notebooks/ from solutions/")
    release.add_argument("ids", nargs="*")
    release.set_defaults(run=command_release)
    check = commands.add_parser("check", help="grade solution and blank release without touching the repo")
    check.add_argument("ids", nargs="*")
    check.set_defaults(run=command_check)
    grade = commands.add_parser("grade", help="autograde a folder of submissions")
    grade.add_argument("submissions")
    grade.add_argument("--out", default="build/grades")
    grade.set_defaults(run=command_grade)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
