"""Feedback that never shows hidden tests.

nbgrader's feedback is the autograded notebook rendered to HTML. Left alone it
contains each test cell's full source, hidden tests included (nbgrader restores
them from the gradebook before grading), and the traceback of any failing
assert, whose context lines and message can quote a hidden test.

:class:`HideHiddenTests` runs in the feedback preprocessor chain (see
``nbgrader_config.py``). For every graded test cell that has a hidden region it

- removes the region from the source;
- keeps an error only when it was raised on a visible line, reduced to
  ``ErrorName: message`` (no context lines);
- replaces an error raised in the hidden region (or one it cannot place) with a
  fixed sentence, and drops printed output, which the hidden tests may have made.
"""

from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor
from nbformat.v4 import new_output

from dgm.course.notebooks import hidden_test_span, strip_ansi, strip_hidden_tests

HIDDEN_FAILURE = (
    "A hidden test in this cell failed. Hidden tests check your answer on other inputs "
    "than the visible ones: make sure your code works in general, not only for the examples shown."
)
_CELL_LINE = re.compile(r"(?:Cell In\s*\[\d*\]|<ipython-input-[^>]*>), line (\d+)")


def error_line(output: dict) -> int | None:
    """The line of the executed cell where an error output was raised (outermost frame)."""
    text = strip_ansi("\n".join(output.get("traceback", [])))
    match = _CELL_LINE.search(text)
    return int(match.group(1)) if match else None


class HideHiddenTests(NbGraderPreprocessor):
    """Strip hidden tests and the outputs they produce from graded test cells.

    (An nbgrader preprocessor so that it is enabled when named in the config.)
    """

    def preprocess_cell(self, cell, resources, index):
        grading = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not grading.get("grade") or grading.get("solution"):
            return cell, resources
        span = hidden_test_span(cell.source)
        if span is None:
            return cell, resources
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            line = error_line(output)
            if line is not None and line < span[0]:
                summary = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
                outputs.append(new_output("error", ename=output["ename"], evalue=output["evalue"], traceback=[summary]))
            else:
                outputs.append(new_output("stream", name="stderr", text=HIDDEN_FAILURE))
        cell.outputs = outputs
        cell.source = strip_hidden_tests(cell.source)
        return cell, resources
