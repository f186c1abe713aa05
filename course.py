#!/usr/bin/env python3
"""Set up and run the course with nothing but Python 3.10+.

    python3 course.py lab       # set up .venv, then open the course in JupyterLab
    python3 course.py test      # set up .venv, then run every test (extra arguments go to pytest)
    python3 course.py check 04  # check your exercise 04 (also --all, --solutions)
    python3 course.py bench     # set up .venv with the benchmark extras, then run the benchmarks

The first run creates a virtual environment in .venv and installs pydist into it;
later runs reuse it until pyproject.toml changes.
"""

import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# PYDIST_VENV names another environment, e.g. one per Python version in CI: a path
# relative to this folder, or an absolute one (e.g. a clone reusing a course's .venv).
VENV = ROOT / Path(os.environ.get("PYDIST_VENV", ".venv")).expanduser()
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
FIRST_NOTEBOOK = "notebooks/01_naming_nodes.ipynb"
EXTRAS = {"lab": "test,lab", "test": "test", "check": "test", "bench": "test,bench"}
INCLUDES = {"test": {"lab"}}      # pyproject.toml's test extra has all of lab's packages
OPENABLE = (".ipynb", ".py", ".md", ".ex", ".txt")   # what a learner asks the lab to open
STOP_TIMEOUT = 30                 # seconds JupyterLab may take to stop its kernels


def ensure(extras: str) -> None:
    """Create .venv and install pydist[extras] into it, unless that is already done."""
    stamp = VENV / f".installed-{extras.replace(',', '-')}"
    pyproject = ROOT / "pyproject.toml"
    wanted = set(extras.split(","))
    for done in VENV.glob(".installed-*"):      # an install with more extras will do
        has = set(done.name[len(".installed-"):].split("-"))
        has |= set().union(*(INCLUDES.get(extra, set()) for extra in has))
        if wanted <= has and done.stat().st_mtime >= pyproject.stat().st_mtime:
            return
    if not PYTHON.exists():
        print(f"creating {VENV} ...", flush=True)
        venv.create(VENV, with_pip=True)
    print(f"installing pydist[{extras}] into {VENV} ...", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "-e", f".[{extras}]"],
                   check=True, cwd=ROOT)
    stamp.touch()


def lab_command(rest: list[str], env: dict) -> tuple[list[str], dict]:
    """The command that opens the course in JupyterLab, and its environment.

    The whole course is served (so a notebook's link to exercises/ opens), the first
    notebook is opened, a terminal in JupyterLab finds .venv's python, and the layout
    JupyterLab saves stays in this folder."""
    opens = [] if names_a_path(rest) else [FIRST_NOTEBOOK]
    args = [str(PYTHON), "-m", "jupyter", "lab", f"--ServerApp.root_dir={ROOT}", *rest, *opens]
    if hasattr(os, "geteuid") and os.geteuid() == 0:    # a container, often
        args.append("--allow-root")
    env = dict(env)
    env["PATH"] = os.pathsep.join([str(PYTHON.parent), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(VENV)
    # Its open tabs are this folder's, not the account's: two clones (a workshop's shared
    # login) would otherwise reopen each other's notebooks.
    env.setdefault("JUPYTERLAB_WORKSPACES_DIR", str(ROOT / ".jupyter" / "workspaces"))
    return args, env


def names_a_path(rest: list[str]) -> bool:
    """Whether JupyterLab's arguments name something to open (``notebooks/04_processes.ipynb``),
    not only options: in ``--port 8899`` the 8899 is the option's value, not a path."""
    for i, arg in enumerate(rest):
        if arg.startswith("-"):
            continue
        before = rest[i - 1] if i else ""
        takes_it = before.startswith("-") and "=" not in before
        if not takes_it or arg.endswith(OPENABLE) or (ROOT / arg).exists():
            return True
    return False


def run_lab(args: list[str], env: dict) -> int:
    """Run JupyterLab until it stops, or until Ctrl-C: then stop it, kernels included
    (SIGTERM, which JupyterLab takes as "shut down"), and end quietly. JupyterLab runs in
    a session of its own, so Ctrl-C reaches this process alone, not JupyterLab's
    "Shutdown this Jupyter server (y/[n])?" question."""
    lab = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    for name in ("SIGTERM", "SIGHUP"):   # a closed terminal or a kill stop the lab as well
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), interrupt)
    try:
        return lab.wait()
    except KeyboardInterrupt:
        print("\nstopping JupyterLab and its kernels ...", flush=True)
        lab.send_signal(signal.SIGTERM)
        try:
            lab.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait()
        except KeyboardInterrupt:        # a second Ctrl-C: no more waiting
            lab.kill()
            lab.wait()
        print("JupyterLab is stopped.", flush=True)
        return 0


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
    env = dict(os.environ)
    if command == "lab":
        return run_lab(*lab_command(rest, env))
    elif command == "check":
        args = [str(PYTHON), "-m", "pydist", "check", *rest]
    elif command == "test":
        args = [str(PYTHON), "-m", "pytest", *rest]
    else:
        args = [str(PYTHON), "-m", "bench", *rest]
    return subprocess.run(args, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:            # Ctrl-C while installing, testing or checking
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
