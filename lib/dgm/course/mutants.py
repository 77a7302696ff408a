"""Tests of the tests: realistic wrong answers ("mutants") run against each exercise's test cells.

A mutant is a solution cell with one plausible student bug: a conceptual slip that runs and returns
the right shapes. It is written as a replacement of one snippet of the solution's source, so a
mutant whose snippet is gone (the solution changed) fails loudly instead of testing nothing.
Mutant files are Python modules (``tests/mutants/<assignment>.py``) with one dict::

    MUTANTS = {"<grade_id of the solution cell>": [("what the bug is", "old snippet", "new snippet"), ...]}

:func:`run_mutants` executes the assignment's solution notebook once, in one kernel, in fast mode.
Right after each solution cell that has mutants it tries every mutant: the mutant cell, then the
cells up to the exercise's last test cell (the autograded test cells before the next solution
cell, and any cells between them), once with the hidden tests stripped and once whole. Then it
runs the right answer again and goes on. A mutant is *caught* when a test cell fails.
"""

from __future__ import annotations

import importlib.util
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from dgm.course.notebooks import kernel_env, source_notebook, strip_hidden_tests

Mutants = dict[str, list[tuple[str, str, str]]]


@dataclass
class Verdict:
    """One mutant's fate: did the visible tests, and all tests, let it through?"""

    assignment: str
    exercise: str
    mutant: str
    passed_visible: bool
    passed_all: bool


def load_mutants(path: Path) -> Mutants:
    """The ``MUTANTS`` dict of the mutant file at ``path``."""
    spec = importlib.util.spec_from_file_location(f"mutants_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTANTS


def mutate(source: str, old: str, new: str) -> str:
    """``source`` with its one occurrence of ``old`` replaced by ``new``."""
    count = source.count(old)
    if count != 1:
        raise ValueError(f"mutant snippet found {count} times (expected once) in the solution: {old!r}")
    return source.replace(old, new)


def _role(cell) -> str:
    grading = cell.metadata.get("nbgrader", {})
    if cell.cell_type != "code":
        return "text"
    if grading.get("solution"):
        return "solution"
    return "test" if grading.get("grade") else "code"


def run_mutants(assignment: str, mutants: Mutants, cell_timeout: int = 120) -> list[Verdict]:
    """Run every mutant of ``assignment`` (see the module's docstring); one :class:`Verdict` each."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(source_notebook(assignment), as_version=4)
    roles = [_role(cell) for cell in nb.cells]
    sources = [cell.source for cell in nb.cells]  # nbclient stores each executed cell back into nb
    solutions = {cell.metadata["nbgrader"]["grade_id"]: i for i, cell in enumerate(nb.cells) if roles[i] == "solution"}
    unknown = sorted(set(mutants) - set(solutions))
    if unknown:
        raise ValueError(f"{assignment}: no solution cell with grade_id {unknown}; there are {sorted(solutions)}")

    def exercise_cells(start: int) -> list[int]:
        """The code cells after solution ``start`` up to its last test cell (before the next solution)."""
        end = next((i for i in range(start + 1, len(nb.cells)) if roles[i] == "solution"), len(nb.cells))
        tests = [i for i in range(start + 1, end) if roles[i] == "test"]
        return [i for i in range(start + 1, tests[-1] + 1) if roles[i] in ("code", "test")] if tests else []

    verdicts: list[Verdict] = []
    with tempfile.TemporaryDirectory() as folder:
        # allow_errors: a failing cell must not make the kernel abort the requests that follow it
        # (with stop_on_error it does, and an aborted cell would look like a passing one).
        client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", interrupt_on_timeout=True,
                                allow_errors=True, resources={"metadata": {"path": folder}})
        env = dict(kernel_env(fast=True), MPLBACKEND="agg")

        def run(index: int, source: str) -> bool:
            """Execute ``source`` as cell ``index``; False if it raised."""
            cell = nbformat.v4.new_code_cell(source)
            try:
                client.execute_cell(cell, index)
            except (CellExecutionError, TimeoutError):
                return False
            return not any(output.get("output_type") == "error" for output in cell.outputs)

        with client.setup_kernel(env=env):
            for index, cell in enumerate(list(nb.cells)):
                if roles[index] == "text":
                    continue
                run(index, sources[index])
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if roles[index] != "solution" or grade_id not in mutants:
                    continue
                following = exercise_cells(index)
                for name, old, new in mutants[grade_id]:
                    passed = []
                    for strip in (True, False):
                        if not run(index, mutate(sources[index], old, new)):
                            raise ValueError(f"{assignment} {grade_id}: mutant {name!r} does not run")
                        results = [run(i, strip_hidden_tests(sources[i]) if strip else sources[i]) for i in following]
                        passed.append(all(ok for i, ok in zip(following, results) if roles[i] == "test"))
                    verdicts.append(Verdict(assignment, grade_id, name, *passed))
                run(index, sources[index])  # the right answer again, for the cells that follow
    return verdicts


def catch_rates(verdicts: list[Verdict]) -> str:
    """A line per assignment: mutants caught by the visible tests, and by all tests."""
    lines = []
    for assignment in dict.fromkeys(v.assignment for v in verdicts):
        mine = [v for v in verdicts if v.assignment == assignment]
        visible = sum(not v.passed_visible for v in mine)
        every = sum(not v.passed_all for v in mine)
        lines.append(f"{assignment}: {len(mine)} mutants; caught by the visible tests {visible} "
                     f"({visible / len(mine):.0%}), by all tests {every} ({every / len(mine):.0%})")
    return "\n".join(lines)
