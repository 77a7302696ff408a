"""Notebook helpers: the list of assignments, hidden-test stripping, execution.

An assignment is a folder ``solutions/<id>/`` holding the nbgrader source notebook
``<id>.ipynb``. Ids sort in lecture order (``01_density``, ``02_procedural``, ...).
"""

from __future__ import annotations

import copy
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def repo_root() -> Path:
    """The repository root (the folder holding ``nbgrader_config.py``)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "nbgrader_config.py").exists():
            return parent
    raise FileNotFoundError("nbgrader_config.py not found above dgm/course: is dgm installed from the repository?")


def assignment_ids(root: Path | None = None) -> list[str]:
    """Ids of the assignments in ``solutions/``, in lecture order."""
    root = root or repo_root()
    return sorted(p.name for p in (root / "solutions").iterdir() if (p / f"{p.name}.ipynb").exists())


def source_notebook(assignment_id: str, root: Path | None = None) -> Path:
    """Path of an assignment's nbgrader source notebook; ``ValueError`` for an unknown id."""
    root = root or repo_root()
    path = root / "solutions" / assignment_id / f"{assignment_id}.ipynb"
    if not path.exists():
        raise ValueError(f"assignment_id: no source notebook {path}; known: {', '.join(assignment_ids(root))}")
    return path


def hidden_test_span(source: str) -> tuple[int, int] | None:
    """1-based (first, last) line numbers of the hidden-test region of a cell, or None."""
    lines = source.splitlines()
    begin = next((i for i, line in enumerate(lines, 1) if HIDDEN_BEGIN in line), None)
    if begin is None:
        return None
    end = next((i for i, line in enumerate(lines, 1) if i > begin and HIDDEN_END in line), len(lines))
    return begin, end


def strip_hidden_tests(source: str) -> str:
    """The cell source without its hidden-test region (markers included)."""
    span = hidden_test_span(source)
    if span is None:
        return source
    lines = source.splitlines()
    return "\n".join(lines[: span[0] - 1] + lines[span[1] :])


def strip_solution_markers(source: str) -> str:
    """The cell source without the ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines (the solution stays)."""
    return "\n".join(line for line in source.splitlines() if line.strip() not in SOLUTION_MARKERS)


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes (as in tracebacks)."""
    return _ANSI.sub("", text)


def unreadable(path: Path) -> str:
    """Why ``path`` is not a notebook that can be run and graded, or ``""`` if it is one."""
    try:
        nbformat.read(path, as_version=4)
    except FileNotFoundError:
        return f"no such file: {path}"
    except Exception as err:  # any parse or schema error
        first_line = str(err).splitlines()[0][:200] if str(err) else ""
        return f"not a readable notebook ({type(err).__name__}: {first_line})"
    return ""


def without_hidden_tests(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` whose cells show no hidden tests (outputs are kept)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        cell.source = strip_hidden_tests(cell.source)
    return nb


def kernel_env(fast: bool) -> dict[str, str]:
    """Environment for a kernel or an nbgrader run: ``DGM_FAST`` set, and this
    interpreter's folder first on ``PATH`` (nbgrader calls ``alembic`` and the
    python3 kernelspec calls ``python`` by name, and both must come from here)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return dict(os.environ, DGM_FAST="1" if fast else "0", PYTHONUNBUFFERED="1", PATH=path)


class LocalKernelManager(AsyncKernelManager):
    """A kernel on this machine that talks over Unix sockets (ZeroMQ's ``ipc`` transport) instead of
    TCP on localhost: no port is open to other users, and ipykernel has no reason to warn that TCP
    runs unencrypted. The sockets are files ``<tmp>/dgm-kernel-<random>-<n>``, removed at shutdown."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"
        self.ip = os.path.join(tempfile.gettempdir(), f"dgm-kernel-{uuid.uuid4().hex[:12]}")


def execute_notebook(source: Path, target: Path, fast: bool = True, cell_timeout: int = 600) -> float:
    """Execute ``source`` headlessly into ``target`` and return the wall time in seconds.

    ``fast`` sets ``DGM_FAST=1`` for the kernel. The kernel runs in ``target``'s
    folder. A failing cell raises ``nbclient.exceptions.CellExecutionError``
    (after the partly executed notebook has been written to ``target``).
    """
    from nbclient import NotebookClient

    nb = nbformat.read(source, as_version=4)
    target.parent.mkdir(parents=True, exist_ok=True)
    env = dict(kernel_env(fast), MPLBACKEND="module://matplotlib_inline.backend_inline")
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", kernel_manager_class=LocalKernelManager,
                            resources={"metadata": {"path": str(target.parent)}})
    start = time.perf_counter()
    try:
        client.execute(env=env)
    finally:
        nbformat.write(nb, target)
    return time.perf_counter() - start
