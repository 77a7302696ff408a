"""The self-study site: executed solution notebooks -> a Sphinx source folder -> HTML.

``make book`` (``python -m dgm.course book``) does three things, each one function here:

1. :func:`executed_notebook` per assignment: reuse ``build/executed/<id>.ipynb`` (what
   ``make course`` writes) when it is newer than its source and shows no error, else
   execute the source notebook into it (fast mode unless ``--full``);
2. :func:`write_source`: a Sphinx project in ``build/book/src/``, made of ``book/conf.py``
   and ``book/_static/`` (committed), ``index.md`` (syllabus.md and the table of chapters,
   in lecture order), ``<id>/<id>.ipynb`` (each executed notebook as a reader sees it, see
   :func:`chapter`) and MathJax 3 in ``_static/mathjax/`` (:func:`fetch_mathjax`);
3. :func:`build_html`: Sphinx with myst-nb (which never executes) and sphinx-book-theme,
   into ``build/book/html/``, with warnings treated as errors.

The site needs no network: MathJax is served from the site itself, and external
stylesheets in outputs are dropped. A chapter starts with an "Open in Colab" link to the
released student notebook ``notebooks/<id>/<id>.ipynb`` of the GitHub repository
``$DGM_REPO_URL`` (default :data:`REPO_URL_DEFAULT`, a placeholder) on branch
``$DGM_REPO_BRANCH`` (default ``main``).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import nbformat

from dgm.course.notebooks import (
    execute_notebook,
    repo_root,
    source_notebook,
    strip_solution_markers,
    without_hidden_tests,
)

REPO_URL_DEFAULT = "https://github.com/OWNER/deep-generative-models"
MATHJAX = "mathjax@3.2.2"
EXTERNAL_STYLESHEET = re.compile(r"<link\b[^>]*\bhref=[\"']?(?:https?:)?//[^>]*>\s*", re.IGNORECASE)


def colab_url(assignment: str, repo_url: str | None = None, branch: str | None = None) -> str:
    """Colab's URL of the released notebook ``notebooks/<assignment>/<assignment>.ipynb``.

    ``repo_url`` (default ``$DGM_REPO_URL``, else :data:`REPO_URL_DEFAULT`) must be
    ``https://github.com/<owner>/<repo>``: Colab opens notebooks from GitHub.
    """
    repo_url = (repo_url or os.environ.get("DGM_REPO_URL") or REPO_URL_DEFAULT).rstrip("/")
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?", repo_url)
    if match is None:
        raise ValueError(
            f"DGM_REPO_URL: expected https://github.com/<owner>/<repo> (Colab opens GitHub notebooks), got {repo_url!r}"
        )
    branch = branch or os.environ.get("DGM_REPO_BRANCH") or "main"
    owner, repo = match.groups()
    notebook = f"notebooks/{assignment}/{assignment}.ipynb"
    return f"https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/{notebook}"


def has_errors(nb: nbformat.NotebookNode) -> bool:
    """Whether any cell of ``nb`` has an error output."""
    return any(output.output_type == "error" for cell in nb.cells for output in cell.get("outputs", []))


def executed_notebook(assignment: str, folder: Path, fast: bool = True) -> Path:
    """``folder/<assignment>.ipynb``, executed from the source notebook unless a copy newer
    than the source and without errors is already there (``fast``: ``DGM_FAST=1``).

    A failing cell raises ``nbclient.exceptions.CellExecutionError`` and leaves no copy.
    """
    source, target = source_notebook(assignment), folder / f"{assignment}.ipynb"
    if (
        target.exists()
        and target.stat().st_mtime >= source.stat().st_mtime
        and not has_errors(nbformat.read(target, as_version=4))
    ):
        print(f"reusing {target} (delete it to execute again)", flush=True)
        return target
    print(f"executing {assignment} ({'fast' if fast else 'full'} mode) ...", flush=True)
    partial = folder / f"{assignment}.partial.ipynb"
    try:
        seconds = execute_notebook(source, partial, fast=fast)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    print(f"  {assignment} executed in {seconds:.0f} s", flush=True)
    return target


def fetch_mathjax(cache: Path) -> Path:
    """MathJax 3's ``es5/`` folder (``tex-mml-chtml.js``, fonts, extensions), fetched once
    with ``npm pack`` from the npm registry into ``cache/mathjax@<version>/es5``."""
    es5 = cache / MATHJAX / "es5"
    if (es5 / "tex-mml-chtml.js").exists():
        return es5
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError(
            f"npm not found: the site serves MathJax from the npm package {MATHJAX}; "
            "install Node.js and npm (Debian: apt-get install npm)"
        )
    with tempfile.TemporaryDirectory(prefix="dgm-mathjax-") as tmp:
        packed = subprocess.run([npm, "pack", MATHJAX, "--pack-destination", tmp], capture_output=True, text=True)
        if packed.returncode != 0:
            raise RuntimeError(f"npm pack {MATHJAX} failed (exit {packed.returncode}): {packed.stderr.strip()[-1000:]}")
        with tarfile.open(Path(tmp) / packed.stdout.split()[-1]) as tar:
            tar.extractall(tmp, filter="data")
        shutil.copytree(Path(tmp) / "package" / "es5", es5.with_name("es5.partial"), dirs_exist_ok=True)
        es5.with_name("es5.partial").replace(es5)
    return es5


def chapter(nb: nbformat.NotebookNode, assignment: str) -> nbformat.NotebookNode:
    """A copy of the executed solution notebook ``nb`` as the book shows it: no hidden tests,
    no solution markers, no code cell left empty by that, no external stylesheet in an HTML
    output (matplotlib's animations link Font Awesome on a CDN; the theme ships it), and an
    "Open in Colab" link to the student notebook first."""
    nb = without_hidden_tests(nb)
    cells = []
    for cell in nb.cells:
        cell.source = strip_solution_markers(cell.source)
        if cell.cell_type == "code" and not cell.source.strip() and not cell.outputs:
            continue
        for output in cell.get("outputs", []):
            if "text/html" in output.get("data", {}):
                output.data["text/html"] = EXTERNAL_STYLESHEET.sub("", output.data["text/html"])
        cells.append(cell)
    link = html.escape(colab_url(assignment))
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            f'<p><a class="colab-link" href="{link}">Open in Colab</a> '
            "to run the student notebook, with its exercises left for you to fill in.</p>"
        )
    ] + cells
    return nb


def write_source(executed: dict[str, Path], src: Path, root: Path | None = None) -> Path:
    """Write the Sphinx project for ``executed`` ({assignment id: executed notebook}, in
    lecture order) into ``src`` (replaced); return ``src``."""
    root = root or repo_root()
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(root / "book", src, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(fetch_mathjax(root / "build" / "cache"), src / "_static" / "mathjax")
    toc = "\n".join(f"{assignment}/{assignment}" for assignment in executed)
    syllabus = (root / "syllabus.md").read_text(encoding="utf-8")
    toctree = f"```{{toctree}}\n:caption: Lectures\n:maxdepth: 1\n\n{toc}\n```\n"
    (src / "index.md").write_text(f"{syllabus}\n{toctree}", encoding="utf-8")
    for assignment, path in executed.items():
        (src / assignment).mkdir()
        nbformat.write(chapter(nbformat.read(path, as_version=4), assignment), src / assignment / f"{assignment}.ipynb")
    return src


def build_html(src: Path, html_dir: Path, doctrees: Path) -> Path:
    """Run Sphinx on ``src`` into ``html_dir`` (a fresh build); return its ``index.html``.
    Any Sphinx warning fails the build with ``RuntimeError``, after all are printed."""
    from sphinx.cmd.build import build_main

    shutil.rmtree(html_dir, ignore_errors=True)
    code = build_main(["-b", "html", "-E", "-q", "-W", "--keep-going", "-d", str(doctrees), str(src), str(html_dir)])
    if code != 0:
        raise RuntimeError(f"sphinx-build failed on {src} (exit {code}): see its warnings above")
    return html_dir / "index.html"


def build_book(executed: dict[str, Path], out: Path, root: Path | None = None) -> Path:
    """The site of ``executed`` ({id: executed notebook}, in lecture order) in ``out/html``,
    from the Sphinx project in ``out/src``; return ``out/html/index.html``."""
    src = write_source(executed, out / "src", root)
    return build_html(src, out / "html", out / "doctrees")
