"""Sphinx configuration of the self-study site (``make book``).

``dgm.course.book`` copies this file and ``_static/`` into the generated source folder
(build/book/src/), beside ``index.md`` (the syllabus) and one executed notebook per
chapter, and puts MathJax 3 into ``_static/mathjax/``: the site needs no network.
"""

project = "Deep generative models, from scratch"
author = "the course authors"
html_title = project

extensions = ["myst_nb"]
exclude_patterns = ["_build"]

# Outputs come from the executed notebooks; Sphinx never runs a kernel.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# MathJax 3 served from the site itself (relative paths are relative to _static/).
mathjax_path = "mathjax/tex-mml-chtml.js"
mathjax3_config = {"tex": {"tags": "ams"}}

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_favicon = "_static/favicon.svg"
html_theme_options = {"home_page_in_toc": True, "show_toc_level": 2}
# The theme reads the colour mode from html_context; unset, it logs a console error.
html_context = {"default_mode": "auto"}
html_show_sourcelink = False
