"""The exercises: stubs made from the solutions, and ``python -m pydist check``.

The solutions (``solutions/exNN_*.py``) are the one source of truth. Each task's code
sits between ``# BEGIN SOLUTION N`` and ``# END SOLUTION``; the stub a learner edits
(``exercises/exNN_*.py``) is the same file with those blocks replaced by a
``raise NotImplementedError``. ``python -m pydist._exercises build`` (``make
exercises``) writes the stubs; a test fails when they drift apart.

``python -m pydist check 04`` runs ``exercises/checks/check_04.py`` against your
``exercises/ex04_*.py`` in a separate process with a time limit, so that a loop that
never ends cannot hang it, and every node it started ends with it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["course_root", "stub_text", "build", "out_of_sync", "main", "unique", "expect", "ask"]

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION (?P<task>\d+)\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
TASK_TIMEOUT = float(os.environ.get("PYDIST_CHECK_TASK_TIMEOUT", 15))  # seconds per task
RUN_TIMEOUT = 120.0          # seconds a whole exercise may take


def course_root() -> Path:
    """The folder with ``exercises/`` and ``solutions/``: here or above, else beside pydist."""
    for folder in (Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parent.parent):
        if (folder / "exercises" / "checks").is_dir():
            return folder
    raise FileNotFoundError("cannot find the course's exercises/ folder: run this command "
                            "from the course folder (the one with notebooks/ and exercises/)")


def stub_text(solution: str) -> str:
    out, skipping = [], False
    for line in solution.splitlines(keepends=True):
        begin = BEGIN.match(line)
        if begin:
            skipping = True
            out.append(f"{begin['indent']}raise NotImplementedError(\"Task {begin['task']}: "
                       f"not done yet (read the docstring and the hints above)\")\n")
        elif END.match(line):
            skipping = False
        elif not skipping:
            out.append(line)
    return "".join(out)


def _pairs(root: Path):
    for solution in sorted((root / "solutions").glob("ex[0-9][0-9]_*.py")):
        yield solution, root / "exercises" / solution.name


def build(root: Path | None = None) -> list[Path]:
    written = []
    for solution, stub in _pairs(root or course_root()):
        stub.write_text(stub_text(solution.read_text()))
        written.append(stub)
    return written


def out_of_sync(root: Path | None = None) -> list[str]:
    return [stub.name for solution, stub in _pairs(root or course_root())
            if not stub.exists() or stub.read_text() != stub_text(solution.read_text())]


# ---------------------------------------------------------------- helpers for checks

class _Nothing:
    def __repr__(self) -> str:
        return "nothing"


NOTHING = _Nothing()


def unique(base: str) -> str:
    """A node name nobody else on this host uses (a learner may have `server` running)."""
    return f"{base}{os.getpid() % 100000}"


def expect(got, expected, called: str) -> None:
    """Fail with a message that teaches: called X, expected Y, got Z."""
    if got != expected:
        raise AssertionError(f"called {called}, expected {expected!r}, got {got!r}")


def ask(pid, message, *, called: str, timeout: float = 2.0, match=None):
    """Send ``message`` to ``pid`` and return the answer; fail clearly if the process
    dies (with its exception) or stays silent."""
    from pydist import Process, receive, send
    ref = Process.monitor(pid)
    send(pid, message)
    try:
        answer = receive(timeout=timeout, match=lambda m: (
            (isinstance(m, tuple) and m[:2] == ("DOWN", ref)) or match is None or match(m)))
    except TimeoutError:
        raise AssertionError(f"called {called}, expected an answer, got nothing after "
                             f"{timeout:g} s") from None
    finally:
        Process.demonitor(ref)
    if isinstance(answer, tuple) and answer[:2] == ("DOWN", ref):
        if answer[4] == "noproc":
            raise AssertionError(f"called {called}: the process is gone: it had already "
                                 f"stopped (did it crash? its report is printed above)")
        raise AssertionError(f"called {called}: the process is gone: it died with "
                             f"{answer[4]!r}")
    return answer


# ---------------------------------------------------------------- running checks

def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _run(number: str, kind: str) -> int:
    """In the child process: run every task of one exercise, report each."""
    root = course_root()
    folder = root / kind
    [path] = folder.glob(f"ex{number}_*.py") or [None]
    if path is None:
        print(f"no exercise {number} in {folder}")
        return 2
    checks_folder = root / "exercises" / "checks"
    sys.path[:0] = [str(folder), str(checks_folder)]   # peers import from here too
    exercise = _load(path, path.stem)
    checks = _load(checks_folder / f"check_{number}.py", f"check_{number}")
    print(f"Exercise {number}: {path.relative_to(root)}")
    from pydist import Node
    if getattr(checks, "NODE", False):
        Node.start(f"check{number}x{os.getpid()}", cookie=f"check-{os.getpid()}")
    passed = 0
    try:
        for index, (title, task) in enumerate(checks.TASKS, 1):
            ok, why = _run_task(task, exercise)
            passed += ok
            print(f"  {'✓' if ok else '✗'} task {index}: {title}")
            if not ok:
                print(f"      {why}")
    finally:
        Node.stop()
    failed = len(checks.TASKS) - passed
    print(f"{passed}/{len(checks.TASKS)} tasks pass."
          + ("" if failed else " Well done!"))
    print(f"RESULT {number} passed={passed} failed={failed}")
    return 0 if failed == 0 else 1


def _run_task(task, exercise) -> tuple[bool, str]:
    outcome: list = []

    def attempt():
        try:
            task(exercise)
            outcome.append((True, ""))
        except NotImplementedError as exc:
            outcome.append((False, f"{exc}"))
        except AssertionError as exc:
            outcome.append((False, str(exc)))
        except Exception as exc:
            outcome.append((False, f"your code raised {type(exc).__name__}: {exc}"))
    thread = threading.Thread(target=attempt, daemon=True, name="pydist-check")
    thread.start()
    thread.join(TASK_TIMEOUT)
    if not outcome:
        return False, f"did not finish within {TASK_TIMEOUT:g} s (a loop that never ends?)"
    return outcome[0]


def main(number: str | None, *, all_: bool = False, solutions: bool = False) -> int:
    """``python -m pydist check NN [--all] [--solutions]``."""
    root = course_root()
    kind = "solutions" if solutions else "exercises"
    if all_:
        numbers = sorted(p.stem.split("_")[1] for p in (root / "exercises" / "checks")
                         .glob("check_[0-9][0-9].py"))
    elif number and number.isdigit():
        numbers = [f"{int(number):02d}"]
    else:
        print("usage: python -m pydist check 04   (or --all; --solutions checks the solutions)")
        return 2
    worst = 0
    for n in numbers:
        started = time.monotonic()
        try:
            code = subprocess.run([sys.executable, "-m", "pydist._exercises", "run", n, kind],
                                  timeout=RUN_TIMEOUT, cwd=root).returncode
        except subprocess.TimeoutExpired:
            print(f"exercise {n} did not finish within {RUN_TIMEOUT:g} s")
            code = 1
        worst = max(worst, code)
        print(f"  ({time.monotonic() - started:.1f} s)\n")
    return worst


if __name__ == "__main__":
    if sys.argv[1:2] == ["build"]:
        for stub in build():
            print("wrote", stub)
        sys.exit(0)
    if sys.argv[1:2] == ["run"] and len(sys.argv) == 4:
        code = _run(sys.argv[2], sys.argv[3])
        sys.stdout.flush()
        os._exit(code)                    # abandon any task thread still running
    print("usage: python -m pydist._exercises build | run NN exercises|solutions")
    sys.exit(2)
