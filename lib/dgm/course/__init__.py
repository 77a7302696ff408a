"""The course pipeline: execute, release and autograde the assignments.

This subpackage is the tooling behind the Makefile targets (``make course``,
``make release``, ``make grade``); students never need it. It drives nbgrader
0.9 with the repository's ``nbgrader_config.py``:

- :mod:`dgm.course.notebooks` -- find assignments, strip hidden tests, execute a
  notebook headlessly;
- :mod:`dgm.course.grading`   -- generate the student release, autograde
  notebooks in a throwaway course directory, read the scores;
- :mod:`dgm.course.batch`     -- grade a class as a batch, here or on the workers of a
  Dask cluster, each result written as it arrives (resumable);
- :mod:`dgm.course.sandbox`   -- the bubblewrap sandbox every graded student
  kernel runs in;
- :mod:`dgm.course.feedback`  -- the feedback preprocessor that hides hidden
  tests and the tracebacks they raise;
- :mod:`dgm.course.validation` -- the student's check of a notebook before submitting;
- :mod:`dgm.course.book`      -- the self-study site built from the executed solutions;
- :mod:`dgm.course.mutants`   -- tests of the tests: realistic wrong answers run against
  each exercise's test cells;
- ``python -m dgm.course``    -- the command line (see ``--help``).
"""
