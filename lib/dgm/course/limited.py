"""Run a command with a memory limit: ``python -m dgm.course.limited GIGABYTES COMMAND [ARGS...]``.

The grader starts nbgrader through this launcher. It sets the address-space limit (``RLIMIT_AS``)
of its own process and then *becomes* the command (``exec``), so the limit holds for nbgrader and,
inherited, for every process nbgrader starts: the notebook's kernel, where a submission's code
runs. An allocation past the limit then fails inside the kernel with a ``MemoryError`` instead of
exhausting the machine. (Each process gets the limit separately; on systems without the
``resource`` module, e.g. Windows, the command runs without one.)
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python -m dgm.course.limited GIGABYTES COMMAND [ARGS...]")
    limit = int(float(argv[0]) * 2**30)
    try:
        import resource
    except ImportError:  # not a Unix: no limits to set
        resource = None
    if resource is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)  # a process may lower its limits, never raise them
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.execvp(argv[1], argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
