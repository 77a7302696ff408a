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

Each exercise also gets one mutant written for it automatically: the student who hard-codes the
visible answers. While the visible tests run on the right answer, every function the solution cell
defines records its answers (:class:`AnswerRecorder`); the hard-coded function returns the recorded
answer for an input it has seen and the first recorded answer for any other. It passes the visible
tests whenever they can be replayed; the hidden tests must call with inputs the visible ones do not.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import importlib.util
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from dgm.course.notebooks import LocalKernelManager, kernel_env, source_notebook, strip_hidden_tests

Mutants = dict[str, list[tuple[str, str, str]]]
HARD_CODED = "hard-codes the visible answers"


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


def fingerprint(value) -> object:
    """A hashable key that equal inputs share from run to run: tensors and arrays by value, modules by
    their weights, optimizers by their parameters, generators by their state, functions by their code."""
    import numpy as np
    import torch

    def digest(array: np.ndarray) -> str:
        return hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()

    if isinstance(value, torch.Tensor):
        data = value.detach().cpu()
        return ("tensor", str(data.dtype), tuple(data.shape), digest(data.to(torch.float64).numpy()))
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, digest(value))
    if isinstance(value, torch.Generator):
        return ("generator", digest(value.get_state().numpy()))
    if isinstance(value, torch.nn.Module):
        return ("module", type(value).__name__, fingerprint(list(value.state_dict().values())))
    if isinstance(value, torch.optim.Optimizer):
        groups = [(group.get("lr"), fingerprint(group["params"])) for group in value.param_groups]
        return ("optimizer", type(value).__name__, tuple(groups))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(fingerprint(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple((repr(key), fingerprint(item)) for key, item in value.items()))
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return (type(value).__name__, value)
    code = getattr(value, "__code__", None)
    if code is not None:
        return ("function", value.__qualname__, hashlib.sha1(code.co_code).hexdigest())
    return ("object", type(value).__name__, re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value)))


def _replay(value):
    """A fresh copy of a recorded answer (tensors detached and cloned, keeping ``requires_grad``)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad and value.is_floating_point())
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_replay(item) for item in value)
    if isinstance(value, dict):
        return {key: _replay(item) for key, item in value.items()}
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - an object that cannot be copied is replayed as it is
        return value


class AnswerRecorder:
    """Wraps a function: calls it, and remembers each input's answer for :meth:`hard_coded`."""

    def __init__(self, function):
        self.function = function
        self.answers: dict = {}

    def __call__(self, *args, **kwargs):
        key = fingerprint((args, kwargs))  # before the call: the function may change its inputs
        answer = self.function(*args, **kwargs)
        self.answers.setdefault(key, _replay(answer))
        return answer

    def hard_coded(self):
        """The student's function: the recorded answer for a seen input, the first one for any other."""
        answers = self.answers

        def hard_coded(*args, **kwargs):
            if not answers:
                raise NotImplementedError("no answer to copy: the visible tests never call this function")
            key = fingerprint((args, kwargs))
            return _replay(answers[key] if key in answers else next(iter(answers.values())))

        hard_coded.__name__ = hard_coded.__qualname__ = self.function.__name__
        return hard_coded


def defined_functions(source: str) -> list[str]:
    """The names of the functions a cell defines at its top level."""
    return [node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)]


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
                                kernel_manager_class=LocalKernelManager,
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

                def passes(strip: bool) -> bool:
                    results = [run(i, strip_hidden_tests(sources[i]) if strip else sources[i]) for i in following]
                    return all(ok for i, ok in zip(following, results) if roles[i] == "test")

                for name, old, new in mutants[grade_id]:
                    passed = []
                    for strip in (True, False):
                        if not run(index, mutate(sources[index], old, new)):
                            raise ValueError(f"{assignment} {grade_id}: mutant {name!r} does not run")
                        passed.append(passes(strip))
                    verdicts.append(Verdict(assignment, grade_id, name, *passed))
                functions = defined_functions(sources[index])
                if functions:
                    run(index, sources[index])
                    recorders = ", ".join(f"{f!r}: AnswerRecorder({f})" for f in functions)
                    run(index, f"from dgm.course.mutants import AnswerRecorder\n_recorders = {{{recorders}}}\n"
                               "globals().update(_recorders)")
                    passes(strip=True)
                    run(index, "globals().update({name: r.hard_coded() for name, r in _recorders.items()})")
                    verdicts.append(Verdict(assignment, grade_id, HARD_CODED, passes(strip=True), passes(strip=False)))
                run(index, sources[index])  # the right answer again, for the cells that follow
    return verdicts


def catch_rates(verdicts: list[Verdict]) -> str:
    """A line per assignment: written mutants caught by the visible tests and by all tests, and the
    hard-coded answers caught by all tests (they pass the visible ones wherever those can be replayed)."""
    lines = []
    for assignment in dict.fromkeys(v.assignment for v in verdicts):
        written = [v for v in verdicts if v.assignment == assignment and v.mutant != HARD_CODED]
        hard = [v for v in verdicts if v.assignment == assignment and v.mutant == HARD_CODED]
        visible = sum(not v.passed_visible for v in written)
        every = sum(not v.passed_all for v in written)
        line = (f"{assignment}: {len(written)} written mutants; caught by the visible tests {visible} "
                f"({visible / max(len(written), 1):.0%}), by all tests {every} ({every / max(len(written), 1):.0%})")
        if hard:
            line += (f"; hard-coded visible answers caught {sum(not v.passed_all for v in hard)}/{len(hard)} "
                     f"({sum(not v.passed_visible for v in hard)} of them already by the visible tests)")
        lines.append(line)
    return "\n".join(lines)
