"""nbgrader settings for the course (nbgrader 0.9).

The course directory is the repository root: nbgrader SOURCE notebooks live in
solutions/<id>/, the generated student RELEASE in notebooks/<id>/. Grading runs
in a throwaway copy of this layout (see dgm.course.grading), with this file
copied beside it, so the settings below are the only grading settings.
"""

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "dgm"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
# Only notebooks are part of an assignment; nothing else in the folder is copied.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.db"]

# Grading executes every notebook with the same kernel name the course uses.
c.Execute.kernel_name = "python3"
c.Execute.timeout = 300  # seconds per cell (fast mode keeps every cell far below this)
c.Execute.interrupt_on_timeout = True
c.Execute.allow_errors = True  # a failing cell scores 0 for that cell; grading goes on
c.Execute.execute_retries = 0

# A student who deletes or breaks a test cell still gets it graded from the source.
c.OverwriteCells.add_missing_cells = True

# Cap printed output so a runaway print loop cannot blow up the feedback.
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100

# Feedback shows neither hidden tests nor the tracebacks they raise.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "dgm.course.feedback.HideHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# The release never carries outputs, solutions or hidden tests (nbgrader's defaults, stated).
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
