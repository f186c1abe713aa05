# Shortcuts for course.py, which needs nothing but Python 3.10+:
#   make lab     = python3 course.py lab     (set up, open the course in JupyterLab)
#   make test    = python3 course.py test    (set up, run every test)
PYTHON ?= python3

.PHONY: lab test bench notebooks exercises clean

lab:
	$(PYTHON) course.py lab

test:
	$(PYTHON) course.py test

bench:
	$(PYTHON) course.py bench

# Re-run every notebook in place to refresh its stored outputs.
notebooks:
	$(PYTHON) course.py test --co -q >/dev/null
	cd notebooks && for nb in [0-9]*.ipynb; do \
	  ../.venv/bin/python -m jupyter nbconvert --to notebook --execute --inplace "$$nb" || exit 1; done

# Regenerate the exercise stubs from the solutions (the one source of truth).
exercises:
	$(PYTHON) course.py test --co -q >/dev/null
	.venv/bin/python -m pydist._exercises build

clean:
	rm -rf .venv .pytest_cache .ruff_cache
