# The course's commands. Each target creates or reuses the local virtual
# environment $(VENV) first; see README.md.
#
#   make course              the main job: execute, release, autograde, render (FULL=1 for full budgets)
#   make test                unit tests and the notebook pipeline
#   make release             regenerate notebooks/ from solutions/
#   make grade SUBMISSIONS=dir [OUT=build/grades] [JOBS=1] [NO_SANDBOX=1] [SCHEDULER=tcp://host:8786] [RESUME=1]
#                            (see docs/instructors.md)
#   make validate NB=notebooks/<id>/<id>.ipynb               a student's check before submitting
#   make lab                 Jupyter Lab on the student notebooks
#   make bench               benchmarks: prints a table, writes bench/results.json
#   make book                the self-study site in build/book/html/ (FULL=1 for full budgets)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch==2.13.0 is a small CPU build on the course machines. Elsewhere, choose the
# build with TORCH_SPEC / TORCH_INDEX, e.g. the CPU wheel from PyTorch's index:
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
# or a CUDA one:  make test TORCH_SPEC=torch TORCH_INDEX=https://download.pytorch.org/whl/cu126
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.installed-dgm
OUT ?= build/grades
JOBS ?= 1

.PHONY: venv course test release grade validate lab bench book clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
	$(PY) -m pip install --quiet -e ".[course,dev,book]"
	@# Dask workers started from this venv may start grading processes (see docs/instructors.md).
	@mkdir -p $(VENV)/etc/dask && printf 'distributed:\n  worker:\n    daemon: false\n' > $(VENV)/etc/dask/dgm-grading.yaml
	@touch $(STAMP)

venv: $(STAMP)

course: $(STAMP)
	$(PY) -m dgm.course course $(if $(FULL),--full,) $(if $(NO_SANDBOX),--no-sandbox,)

test: $(STAMP)
	$(PY) -m pytest

release: $(STAMP)
	$(PY) -m dgm.course release

grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=<dir of <student>/<assignment>/<assignment>.ipynb>"; exit 2; }
	$(PY) -m dgm.course grade "$(SUBMISSIONS)" --out "$(OUT)" --jobs $(JOBS) $(if $(NO_SANDBOX),--no-sandbox,) \
		$(if $(SCHEDULER),--scheduler "$(SCHEDULER)",) $(if $(RESUME),--resume,)

validate: $(STAMP)
	@test -n "$(NB)" || { echo "usage: make validate NB=notebooks/<id>/<id>.ipynb"; exit 2; }
	$(PY) -m dgm.course validate "$(NB)"

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	$(PY) bench/run.py

book: $(STAMP)
	$(PY) -m dgm.course book $(if $(FULL),--full,)

clean:
	rm -rf build .pytest_cache
