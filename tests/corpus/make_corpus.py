"""Build the corpus of broken and hostile submissions that the grader must survive.

    python tests/corpus/make_corpus.py        # rewrites tests/corpus/submissions/

Every submission is made from the released notebook of :data:`ASSIGNMENT` (the quickest to run):
first a correct one, its answer cells filled in from the solution source, then one variant per
way a student's notebook can go wrong. The layout is the grader's input,
``submissions/<case>/<assignment>/<assignment>.ipynb``, with the case as the student's name.
:data:`CASES` says what each case does and what grading it must end in; ``tests/test_grading.py``
grades the whole corpus in one batch and checks every outcome.

Hostile code goes at the top of the LAST exercise's answer cell, before its function is defined,
so that a case graded with that exercise lost (and nothing else) shows that grading went on.
The attacks on the machine (reading or writing outside the sandbox, changing grades, processes
that outlive grading, the network, a fork bomb, a disk filler) keep every answer right (the one
that changes grades starts from the blank release): honest cells must still score right, and
``tests/test_grading.py`` checks on the host that nothing got out.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from dgm.course.notebooks import strip_solution_markers

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ASSIGNMENT = "02_procedural"
SUBMISSIONS = HERE / "submissions"
LAST_ANSWER = "expand_stochastic"  # the last exercise: 3 points
FIRST_TEST = "test_random_turn_path"  # the first exercise's test cell: 3 points
HARD_CODED = "expand"  # its visible tests are passed by a lookup table; the hidden ones are not
ESCAPE = "dgm-corpus-escape"  # the name of every file the attacks try to write outside
PORT = 47613  # the attacks connect to 127.0.0.1:PORT, where the test listens
SURVIVOR = "86399.25"  # the argument of the `sleep` processes that try to outlive grading


@dataclass(frozen=True)
class Case:
    """One submission of the corpus and the grading it must get.

    ``status``: "graded" or "FAILED"; ``lost``: grade_ids of the test cells that must score 0
    (every other autograded cell must get full points); ``reason``: words the FAILED reason must
    contain; ``first_error``: words the first error outside the tests must contain ("" for none).
    """

    what: str
    status: str
    lost: tuple[str, ...] = ()
    reason: str = ""
    first_error: str = ""


CASES = {
    "correct": Case("every answer right", "graded"),
    "infinite_loop": Case(
        "`while True: pass` in an answer cell: the cell timeout interrupts it",
        "graded", lost=(f"test_{LAST_ANSWER}",), first_error="cell timeout",
    ),
    "ignores_sigint": Case(
        "an endless loop that ignores SIGINT, so the interrupt cannot stop it",
        "FAILED", reason="timed out",
    ),
    "os_exit": Case("`os._exit(1)` kills the kernel", "FAILED", reason="kernel died"),
    "edited_test": Case(
        "a wrong answer, and its test cell edited down to `pass`: the grader restores the test",
        "graded", lost=(FIRST_TEST,),
    ),
    "deleted_test": Case("every answer right, one test cell deleted: the grader restores it", "graded"),
    "corrupt": Case("not JSON at all", "FAILED", reason="not a readable notebook"),
    "memory_hog": Case(
        "allocates until memory runs out: the limit turns it into a MemoryError in that cell",
        "graded", lost=(f"test_{LAST_ANSWER}",), first_error="MemoryError",
    ),
    "output_flood": Case("prints 200,000 lines, answers right", "graded"),
    "foreign_kernel": Case("saved with an R kernelspec, answers right: graded with Python", "graded"),
    "hard_coded": Case(
        "`expand` returns the visible tests' answers from a table: the hidden tests catch it",
        "graded", lost=(f"test_{HARD_CODED}",),
    ),
    "import_error": Case(
        "imports a module that does not exist, in the notebook's first code cell",
        "graded", lost=("*",), first_error="ModuleNotFoundError",
    ),
    "reads_outside": Case(
        "looks for the solutions, the tests, gradebooks, other submissions and home folders: finds none, "
        "answers right (it raises, losing its exercise, if it finds any)", "graded",
    ),
    "writes_outside": Case(
        "writes into dgm's package, site-packages, nbgrader, the home folders, /tmp and /, answers right", "graded",
    ),
    "changes_grades": Case(
        "the blank release, with SQLite triggers and a direct UPDATE that give full marks in every "
        "gradebook it can find", "graded", lost=("*",),
    ),
    "survives_grading": Case("starts `sleep` processes in their own sessions, answers right", "graded"),
    "network": Case(f"connects to 127.0.0.1:{PORT} and sends what it can, answers right", "graded"),
    "fork_bomb": Case("forks up to 2,000 sleeping children, then kills them, answers right", "graded"),
    "disk_filler": Case("writes up to 1 GB into its folder, then deletes it, answers right", "graded"),
}

HOSTILE_CODE = {
    "infinite_loop": "while True:\n    pass\n",
    "ignores_sigint": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n",
    "os_exit": "import os\nos._exit(1)\n",
    "memory_hog": "hog = []\nwhile True:\n    hog.append(b'x' * 2**27)\n",
    "output_flood": "for line in range(200_000):\n    print(line)\n",
    "reads_outside": f"""import glob, os, pathlib, dgm
repo = pathlib.Path(dgm.__file__).resolve().parents[2]
here = pathlib.Path.cwd()
roots = {{str(repo), str(pathlib.Path.home()), "/root", "/home", "/tmp", "/work", *(str(p) for p in here.parents[:-1])}}
patterns = [f"{{root}}/**/{{name}}" for root in roots for name in ("gradebook.db", "{ASSIGNMENT}.ipynb")]
patterns += [f"{{repo}}/solutions/*/*.ipynb", f"{{repo}}/tests/*.py", f"{{repo}}/.git/HEAD", "/root/*", "/home/*/*"]
found = [p for pattern in patterns for p in glob.glob(pattern, recursive=True) if not p.startswith(str(here))]
assert not found, f"read outside the sandbox: {{found[:5]}}"
""",
    "writes_outside": f"""import os, pathlib, sysconfig, dgm, nbgrader
targets = [pathlib.Path(dgm.__file__).parent, pathlib.Path(nbgrader.__file__).parent,
           pathlib.Path(sysconfig.get_paths()["purelib"]), pathlib.Path.home(), pathlib.Path(os.path.expanduser("~root")),
           pathlib.Path("/tmp"), pathlib.Path("/")]
for target in targets:
    try:
        (target / "{ESCAPE}").write_text("written by a submission")
    except OSError:
        pass
""",
    "changes_grades": """import glob, pathlib, sqlite3
roots = [*(str(p) for p in pathlib.Path.cwd().parents[:-1]), "/tmp", "/work", "/root"]
full = "(SELECT max_score FROM grade_cells WHERE grade_cells.id = NEW.cell_id)"
for path in {p for root in roots for p in glob.glob(f"{root}/**/gradebook.db", recursive=True)}:
    try:
        with sqlite3.connect(path) as db:
            for event in ("INSERT", "UPDATE"):
                db.execute(f"CREATE TRIGGER IF NOT EXISTS full_{event} AFTER {event} ON grade BEGIN "
                           f"UPDATE grade SET auto_score = {full} WHERE id = NEW.id AND auto_score IS NOT {full}; END")
            db.execute("UPDATE grade SET auto_score = (SELECT max_score FROM grade_cells WHERE id = grade.cell_id)")
    except sqlite3.Error:
        pass
""",
    "survives_grading": f"""import subprocess
for _ in range(2):
    subprocess.Popen(["sh", "-c", "sleep {SURVIVOR} & sleep {SURVIVOR}"], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
""",
    "network": f"""import socket
try:
    socket.create_connection(("127.0.0.1", {PORT}), timeout=3).sendall(b"escaped")
except OSError as err:
    print("no connection:", err)
""",
    "fork_bomb": """import os, signal, time
children = []
try:
    for _ in range(2000):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
except OSError as err:
    print("fork failed:", err)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print(f"forked {len(children)} children")
""",
    "disk_filler": """import os
written = 0
try:
    with open("filler.bin", "wb") as filler:
        while written < 2**30:
            filler.write(bytes(2**20))
            filler.flush()
            written += 2**20
except OSError as err:
    print("write failed:", err)
finally:
    if os.path.exists("filler.bin"):
        os.remove("filler.bin")
print(f"wrote {written >> 20} MB")
""",
}
FROM_BLANK = {"changes_grades"}  # attacks made on the blank release: they must earn what it earns, 0

WRONG_ANSWER = """def random_turn_path(z, step=1.0, turn_degrees=10.0):
    return None
"""

HARD_CODED_ANSWER = '''def expand(axiom, rules, n):
    """Passes the visible tests by looking their answers up."""
    seen = {("A", 0): "A", ("A", 1): "AB", ("A", 4): "ABAABABA", ("F+F", 1): "F-F+F-F"}
    return seen.get((axiom, n), "F" * 5**5)
'''


def _grade_id(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", "")


def _cell(notebook, grade_id: str) -> int:
    return next(i for i, cell in enumerate(notebook.cells) if _grade_id(cell) == grade_id)


def solved(release: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The release with every answer cell (code or written) filled in from the solution source."""
    answers = {_grade_id(c): c.source for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
    notebook = copy.deepcopy(release)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = strip_solution_markers(answers[_grade_id(cell)])
    return notebook


def variant(correct: nbformat.NotebookNode, blank: nbformat.NotebookNode, case: str) -> nbformat.NotebookNode | str:
    """The submission of ``case``: a notebook, or (for a corrupt file) the text to write."""
    notebook = copy.deepcopy(blank if case in FROM_BLANK else correct)
    if case in HOSTILE_CODE:
        cell = notebook.cells[_cell(notebook, LAST_ANSWER)]
        cell.source = HOSTILE_CODE[case] + cell.source
    elif case == "edited_test":
        notebook.cells[_cell(notebook, FIRST_TEST.removeprefix("test_"))].source = WRONG_ANSWER
        notebook.cells[_cell(notebook, FIRST_TEST)].source = "pass  # tests removed"
    elif case == "deleted_test":
        del notebook.cells[_cell(notebook, FIRST_TEST)]
    elif case == "corrupt":
        return '{"cells": [ this is not JSON, the file was cut off while saving'
    elif case == "foreign_kernel":
        notebook.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
        notebook.metadata["language_info"] = {"name": "R"}
    elif case == "hard_coded":
        notebook.cells[_cell(notebook, HARD_CODED)].source = HARD_CODED_ANSWER
    elif case == "import_error":
        first_code = next(c for c in notebook.cells if c.cell_type == "code")
        first_code.source = "import a_module_that_does_not_exist\n" + first_code.source
    elif case != "correct":
        raise ValueError(f"unknown case {case!r}")
    return notebook


def build(target: Path = SUBMISSIONS, root: Path = ROOT) -> dict[str, Path]:
    """Write every case under ``target`` (replacing what was there); return case -> notebook path."""
    release = nbformat.read(root / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    source = nbformat.read(root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    correct = solved(release, source)
    shutil.rmtree(target, ignore_errors=True)
    paths = {}
    for case in CASES:
        path = target / case / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        path.parent.mkdir(parents=True)
        made = variant(correct, release, case)
        if isinstance(made, str):
            path.write_text(made)
        else:
            nbformat.write(made, path)
        paths[case] = path
    return paths


if __name__ == "__main__":
    for case, path in build().items():
        print(f"{case:15s} {path.relative_to(ROOT)}")
