#!/usr/bin/env python3
"""Set up and run the course with nothing but Python 3.10+.

    python3 course.py lab     # set up .venv, then open the course in JupyterLab
    python3 course.py test    # set up .venv, then run every test (extra arguments go to pytest)
    python3 course.py bench   # set up .venv with the benchmark extras, then run the benchmarks

The first run creates a virtual environment in .venv and installs pydist into it;
later runs reuse it until pyproject.toml changes.
"""

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
EXTRAS = {"lab": "test,lab", "test": "test", "bench": "test,bench"}


def ensure(extras: str) -> None:
    """Create .venv and install pydist[extras] into it, unless that is already done."""
    stamp = VENV / f".installed-{extras.replace(',', '-')}"
    pyproject = ROOT / "pyproject.toml"
    if stamp.exists() and stamp.stat().st_mtime >= pyproject.stat().st_mtime:
        return
    if not PYTHON.exists():
        print(f"creating {VENV} ...", flush=True)
        venv.create(VENV, with_pip=True)
    print(f"installing pydist[{extras}] into {VENV} ...", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "-e", f".[{extras}]"],
                   check=True, cwd=ROOT)
    stamp.touch()


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 10):
        print(f"pydist needs Python 3.10 or newer; this is {sys.version.split()[0]}",
              file=sys.stderr)
        return 2
    if not argv or argv[0] not in EXTRAS:
        print(__doc__.strip())
        return 2
    command, rest = argv[0], argv[1:]
    ensure(EXTRAS[command])
    if command == "lab":
        args = [str(PYTHON), "-m", "jupyter", "lab", str(ROOT / "notebooks"), *rest]
        if hasattr(os, "geteuid") and os.geteuid() == 0:    # a container, often
            args.append("--allow-root")
    elif command == "test":
        args = [str(PYTHON), "-m", "pytest", *rest]
    else:
        args = [str(PYTHON), "-m", "bench", *rest]
    return subprocess.run(args, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
