# tndsl: `make demo` compiles, checks and renders the gallery; `make test` runs the tests;
# `make docs` redraws the pictures the docs show (committed) and docs/gallery.md; `make bench`
# times the issue 6 suite, the open-world networks and the optimizer steps on CPU and rewrites
# docs/benchmarks.md.
# Each creates .venv on first use (CPU torch 2.13.0, never a CUDA build).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
GALLERY := $(sort $(wildcard gallery/*.tn))
# Named in every install so that no dependency can replace it (pip refuses instead).
TORCH := torch==2.13.0

.PHONY: demo test docs fuzz bench venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q $(TORCH) -e '.[test,singd]'  # singd: the adapter's tests
	# curvlinops (the adapter's tests): its dependency backpack-for-pytorch requires torchvision,
	# which has no build for CPU torch 2.13.0 on PyPI (0.28.0 fails at import; a newer one would
	# replace torch), and neither package imports it: their other dependencies, then both
	# without dependencies.
	$(PY) -m pip install -q $(TORCH) scipy linear_operator unfoldNd tqdm einops einconv==0.1.0
	$(PY) -m pip install -q --no-deps curvlinops-for-pytorch==3.0.1 backpack-for-pytorch==1.7.1
	touch $@

demo: venv
	@mkdir -p out
	$(PY) -m tndsl compile $(GALLERY) -o out/ >/dev/null
	$(PY) -m tndsl render $(GALLERY) -o out/ >/dev/null
	$(PY) -m tndsl check $(GALLERY)

test: venv
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) -m pytest -n 2 --durations=10

docs: venv
	$(PY) docs/pictures.py

# Before a release: the fuzz tests with FUZZ_SCALE times CI's examples (about 20,000 inputs
# at the default 5) and fresh random seeds; FUZZ_SEED=N repeats a run. Outcome counts per
# worker go to out/fuzz-report.txt.
FUZZ_SCALE ?= 5
fuzz: venv
	@mkdir -p out && rm -f out/fuzz-report.txt
	TNDSL_FUZZ_SCALE=$(FUZZ_SCALE) TNDSL_FUZZ_REPORT=out/fuzz-report.txt $(if $(FUZZ_SEED),TNDSL_FUZZ_SEED=$(FUZZ_SEED)) \
	  $(PY) -m pytest -n 2 tests/test_fuzz.py
	@cat out/fuzz-report.txt

bench: venv
	$(PY) -m pip install -q $(TORCH) -e '.[bench]'
	$(PY) -m bench.run --device cpu --size small --out bench/out-cpu
	$(PY) -m bench.update_docs bench/out-cpu
	$(PY) -m bench.open_world --device cpu --budget 3 --out bench/out-cpu --docs docs/benchmarks.md
	$(PY) -m bench.optimizers --device cpu --size small --out bench/out-optimizers-cpu --docs docs/benchmarks.md

clean:
	rm -rf $(VENV) out build dist *.egg-info .pytest_cache .mypy_cache
