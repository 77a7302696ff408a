"""The self-study site (``make book``), read in a real browser.

The module builds the site into build/book-test/ (not build/book/, which may hold a
full-budget build) from the solution notebooks that the session fixture ``pipeline``
(tests/conftest.py) has already executed while grading them, so that CI runs each notebook
once. It serves the site on 127.0.0.1 from a thread
and opens every page in headless Debian Chromium driven by playwright (which downloads
no browser here), checking: no console errors and no request that fails or leaves the
site; every image loads; every formula is typeset by the site's own MathJax; each
chapter links to its student notebook on Colab and shows every figure of the notebook;
the chapters are in lecture order; the search finds a chapter; no hidden test or solution
marker is anywhere in the site. A screenshot of each page goes to
build/book-test/screenshots/<page>.png.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from conftest import ROOT, hidden_lines_of, page_text
from dgm.course import book
from dgm.course.notebooks import HIDDEN_BEGIN, HIDDEN_END, SOLUTION_MARKERS, assignment_ids, source_notebook

# sphinx-book-theme 1.4 uses an API that Sphinx 9 deprecates: not this project's to fix.
pytestmark = [pytest.mark.pipeline, pytest.mark.filterwarnings("ignore:'sphinx_book_theme\\.:Warning")]

IDS = assignment_ids(ROOT)
PAGES = ["index"] + IDS
OUT = ROOT / "build" / "book-test"
CHROMIUM = Path("/usr/bin/chromium")
NO_EXTRA = "the book extra is not installed: pip install -e '.[book]'"


def page_path(name: str) -> str:
    """The site path of a page: ``index.html`` or ``<id>/<id>.html``."""
    return "index.html" if name == "index" else f"{name}/{name}.html"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(pipeline):
    """The site built from the graded (executed) solutions, served on 127.0.0.1 while the module runs."""
    pytest.importorskip("myst_nb", reason=NO_EXTRA)
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed (the site fetches MathJax with it): apt-get install -y npm, as root")
    executed = {a: pipeline.graded / "autograded" / "solution" / a / f"{a}.ipynb" for a in IDS}
    assert all(path.exists() for path in executed.values()), "the pipeline fixture executed every solution"
    index = book.build_book(executed, OUT, ROOT)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=index.parent))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield SimpleNamespace(html=index.parent, src=OUT / "src", url=f"http://127.0.0.1:{server.server_port}/")
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium under playwright."""
    sync_api = pytest.importorskip("playwright.sync_api", reason=NO_EXTRA)
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not at {CHROMIUM}: apt-get install -y chromium, as root (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


def open_page(browser, site, name: str):
    """Open a page; return it with the problems seen while it loaded (console errors,
    uncaught exceptions, failed requests, requests leaving the site)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url[:120]} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    local = (site.url, "data:", "blob:")
    page.on("request", lambda r: None if r.url.startswith(local) else problems.append(f"off-site request: {r.url}"))
    page.goto(site.url + page_path(name), wait_until="load")
    if page.evaluate("() => window.MathJax !== undefined"):
        page.wait_for_function("() => window.MathJax.startup && window.MathJax.startup.promise")
        page.evaluate("() => window.MathJax.startup.promise")
    return page, problems


def hrefs(page, selector: str) -> list[str]:
    """The href attributes of the links matching ``selector``, in page order."""
    return page.locator(selector).evaluate_all("links => links.map(a => a.getAttribute('href'))")


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_cleanly_with_images_and_math(site, browser, name):
    page, problems = open_page(browser, site, name)
    broken = page.evaluate(
        """() => Promise.all(Array.from(document.images).map(img => img.decode().catch(() => null)))
                 .then(() => Array.from(document.images)
                       .filter(img => !(img.complete && img.naturalWidth > 0))
                       .map(img => img.src.slice(0, 120)))"""
    )
    math = page.locator("article.bd-article .math").count()
    typeset = page.locator("article.bd-article .math mjx-container").count()
    errors = page.locator("mjx-merror").count()
    (OUT / "screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=OUT / "screenshots" / f"{name}.png")
    page.close()
    assert problems == [], f"{page_path(name)}: {problems}"
    assert broken == [], f"{page_path(name)}: images that did not load: {broken}"
    assert typeset == math and errors == 0, f"{page_path(name)}: {typeset} of {math} formulas typeset, {errors} errors"
    if name != "index":
        assert math > 0, f"{page_path(name)}: no formula found; is dollarmath on?"


@pytest.mark.parametrize("assignment", IDS)
def test_chapter_links_to_colab_and_shows_every_figure(site, browser, assignment):
    figures = sum(
        "image/png" in output.get("data", {})
        for cell in nbformat.read(site.src / assignment / f"{assignment}.ipynb", as_version=4).cells
        for output in cell.get("outputs", [])
    )
    page, _ = open_page(browser, site, assignment)
    colab = page.locator("a.colab-link").first.get_attribute("href")
    first_link = page.locator("article.bd-article a").first.get_attribute("class")
    shown = page.locator("article.bd-article .cell_output img").count()
    page.close()
    assert colab == book.colab_url(assignment) and colab.endswith(f"/notebooks/{assignment}/{assignment}.ipynb")
    assert "colab-link" in first_link, "the Colab link is not the first link of the chapter"
    assert figures > 0 and shown >= figures, f"{assignment}: {shown} images shown for {figures} figures in its notebook"


def test_landing_page_is_the_syllabus_with_the_chapters_in_lecture_order(site, browser):
    page, _ = open_page(browser, site, "index")
    title = page.locator("article.bd-article h1").first.inner_text()
    chapters = hrefs(page, "article.bd-article .toctree-wrapper a")
    sidebar = hrefs(page, ".bd-docs-nav a")
    page.close()
    assert title.startswith("Syllabus")
    assert chapters == [page_path(a) for a in IDS]
    assert [href for href in sidebar if href != "#"] == [page_path(a) for a in IDS]


def test_search_finds_a_chapter(site, browser):
    page = browser.new_page()
    page.goto(site.url + "search.html?q=reparameterization")
    page.wait_for_selector("#search-results ul.search li a")
    found = hrefs(page, "#search-results ul.search li a")
    page.close()
    assert any(href.startswith(page_path("06_vae")) for href in found), found


def site_text(path: Path) -> str:
    """What a reader can see in a file of the site: a page's text, a notebook's cells, a script."""
    if path.suffix == ".html":
        return page_text(path)
    if path.suffix == ".ipynb":
        return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
    return path.read_text(encoding="utf-8")


def test_no_hidden_test_or_solution_marker_anywhere_in_the_site(site):
    markers = [HIDDEN_BEGIN, HIDDEN_END, *SOLUTION_MARKERS]
    hidden = {a: hidden_lines_of(nbformat.read(source_notebook(a, ROOT), as_version=4)) for a in IDS}
    assert all(hidden.values()), "every source notebook has hidden tests to look for"
    for path in site.html.rglob("*"):
        if path.suffix not in {".html", ".js", ".ipynb", ".md"} or "mathjax" in path.parts:
            continue
        text = site_text(path)
        assert not [m for m in markers if m in text], f"{path.relative_to(site.html)} shows an nbgrader marker"
        for assignment, lines in hidden.items():
            leaked = [line for line in lines if line in text]
            assert leaked == [], f"{path.relative_to(site.html)} shows hidden tests of {assignment}: {leaked[:3]}"
