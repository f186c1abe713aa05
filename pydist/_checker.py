"""``python3 course.py check 04``: check an exercise, task by task, and teach.

    check 04             every task of exercise 04      check --all    every exercise
    check 04 --task 2    only task 2                    check --progress   what passes
    check 04 --hint 2    the next hint for task 2       check --reset 04   the stub again

Each exercise runs in a fresh process with time limits (``TASK_TIMEOUT`` a task,
``IMPORT_TIMEOUT`` to import the learner's file, ``RUN_TIMEOUT`` in all), so a loop
that never ends cannot hang the checker, and every node it started ends with it. A
failed task says what was called, what was expected and what came back; when the
cause is one of the common mistakes (a receive or rpc.call without a timeout, or with
one in milliseconds, a loop that returns after one message, code that blocks at import,
a syntax error) it says that, in the learner's words, and where to learn it. A wait
that cannot end in time is named after ``HOPELESS_AFTER`` seconds, not after the task's
whole limit, and a task still running after ``SAY_AFTER`` seconds says where it is
(``_diagnose`` reads the task's stack). Hints live in ``exercises/hints/NN.md``, from
gentle to nearly the answer, one more each time they are asked for.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from ._diagnose import blame, line_in, line_of, stuck, waiting
from ._errors import MILLISECONDS, in_seconds
from ._exercises import course_root, stub_text

__all__ = ["main", "quiet_when_piped"]

TASK_TIMEOUT = float(os.environ.get("PYDIST_CHECK_TASK_TIMEOUT", 15))   # seconds per task
IMPORT_TIMEOUT = float(os.environ.get("PYDIST_CHECK_IMPORT_TIMEOUT", 10))
RUN_TIMEOUT = 180.0          # seconds a whole exercise may take
HOPELESS_AFTER = 3.0         # seconds: then a wait with no (or no sensible) limit is named
SAY_AFTER = 5.0              # seconds: then a task still running says where it waits
NOTEBOOKS = {"01": "01_naming_nodes", "02": "02_ping_connect_list", "03": "03_rpc",
             "04": "04_processes", "05": "05_cross_process_replies", "06": "06_stock_central",
             "07": "07_the_missing_file", "08": "08_when_nodes_fail",
             "09": "09_python_meets_the_beam", "10": "10_links_and_supervisors",
             "11": "11_names_across_the_cluster"}


# ---------------------------------------------------------------- hints and progress

def hints(root: Path, number: str) -> dict[int, list[str]]:
    """``{task: [hint, ...]}`` from ``exercises/hints/NN.md``, gentlest first."""
    found: dict[int, list[str]] = {}
    task = None
    path = root / "exercises" / "hints" / f"{number}.md"
    for line in path.read_text().splitlines() if path.exists() else []:
        heading = re.match(r"^## Task (\d+)", line)
        if heading:
            task = int(heading[1])
            found[task] = []
        elif task is not None and line.startswith("- "):
            found[task].append(line[2:].strip())
    return found


def _state(root: Path) -> tuple[Path, dict]:
    path = root / "exercises" / ".progress.json"
    try:
        return path, json.loads(path.read_text())
    except (OSError, ValueError):
        return path, {}


def _save(path: Path, state: dict) -> None:
    path.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")


def show_hint(root: Path, number: str, task: int) -> int:
    """Print the hints of ``task`` revealed so far, one more than last time."""
    all_hints = hints(root, number).get(task)
    if not all_hints:
        print(f"exercise {number} has no task {task} (or no hints for it)")
        return 2
    path, state = _state(root)
    seen = state.setdefault("hints", {}).setdefault(number, {})
    shown = min(seen.get(str(task), 0) + 1, len(all_hints))
    seen[str(task)] = shown
    _save(path, state)
    print(f"Exercise {number}, task {task}: hint {shown} of {len(all_hints)}")
    for i, text in enumerate(all_hints[:shown], 1):
        print(f"  {i}. {text}")
    if shown < len(all_hints):
        print(f"  (python3 course.py check {number} --hint {task} shows the next one)")
    return 0


def show_progress(root: Path) -> int:
    _, state = _state(root)
    results = state.get("results", {})
    print("exercise  tasks (✓ passed, ✗ failed, · not checked yet)")
    for number in NOTEBOOKS:
        count = len(hints(root, number)) or 1
        marks = "".join({True: "✓", False: "✗"}.get(results.get(number, {}).get(str(t)), "·")
                        for t in range(1, count + 1))
        print(f"  {number}      {marks}")
    return 0


def _free_backup(stub: Path) -> Path:
    """``exNN_x.py.bak``, else ``.bak2``, ``.bak3``...: a reset never overwrites an
    earlier backup (the learner's work of before the previous reset)."""
    for n in range(1, 10_000):
        backup = stub.with_name(stub.name + (".bak" if n == 1 else f".bak{n}"))
        if not backup.exists():
            return backup
    raise FileExistsError(f"too many backups of {stub.name}: delete some")


def reset(root: Path, number: str) -> int:
    """Write exercise ``number``'s stub again; the learner's file is kept in a backup of
    its own (an untouched stub needs none)."""
    [solution] = (root / "solutions").glob(f"ex{number}_*.py") or [None]
    if solution is None:
        print(f"no exercise {number}")
        return 2
    stub, fresh = root / "exercises" / solution.name, stub_text(solution.read_text())
    if stub.exists() and stub.read_text() == fresh:
        print(f"{stub.relative_to(root)} is already the untouched stub: nothing to reset")
        return 0
    kept = ""
    if stub.exists():
        backup = _free_backup(stub)
        backup.write_text(stub.read_text())
        kept = f" (yours is in {backup.relative_to(root)})"
    stub.write_text(fresh)
    print(f"{stub.relative_to(root)} is the untouched stub again{kept}")
    return 0


# ---------------------------------------------------------------- in the child process

def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _run(number: str, kind: str, only: int | None, results_file: str) -> int:
    root = course_root()
    folder = root / kind
    [path] = folder.glob(f"ex{number}_*.py") or [None]
    if path is None:
        print(f"no exercise {number} in {folder}")
        return 2
    checks_folder = root / "exercises" / "checks"
    sys.path[:0] = [str(folder), str(checks_folder)]   # peers import from here too
    print(f"Exercise {number}: {path.relative_to(root)}")
    exercise = _import(path, root)
    if exercise is None:
        return 2
    checks = _load(checks_folder / f"check_{number}.py", f"check_{number}")
    needs = getattr(checks, "NEEDS", None)            # e.g. "elixir", for exercise 09
    if needs and shutil.which(needs) is None:
        print(f"  skipped: {checks.NEEDS_WHY}")
        Path(results_file).write_text("{}")
        return 0
    if only is not None and not 1 <= only <= len(checks.TASKS):
        print(f"exercise {number} has no task {only}: its tasks are 1 to {len(checks.TASKS)}")
        return 2
    _record_crashes()
    from pydist import Node
    if getattr(checks, "NODE", False):
        Node.start(f"check{number}x{os.getpid()}", cookie=f"check-{os.getpid()}")
    outcome, tips = {}, hints(root, number)
    try:
        for index, (title, task) in enumerate(checks.TASKS, 1):
            if only is not None and index != only:
                continue
            ok, why = _run_task(task, exercise, path, checks_folder, index)
            outcome[index] = ok
            print(f"  {'✓' if ok else '✗'} task {index}: {title}")
            if not ok:
                print(f"      {why}")
                where = re.match(r"Notebook \d\d, section “[^”]*”", (tips.get(index) or [""])[0])
                if where:
                    print(f"      learn it: {where[0]}; a hint: python3 course.py check "
                          f"{number} --hint {index}")
    finally:
        Node.stop()
    for note in _habits(path):
        print(f"  note: {note}")
    Path(results_file).write_text(json.dumps(outcome))
    passed = sum(outcome.values())
    print(f"{passed}/{len(outcome)} tasks pass." + (" Well done!" if passed == len(outcome)
                                                      else ""))
    return 0 if passed == len(outcome) else 1


def _habits(path: Path) -> list[str]:
    """Elixir's milliseconds written where pydist counts seconds: a wait of 2000 s that
    passes because its message came at once is still a mistake, said even on a pass."""
    import ast
    try:
        tree = ast.parse(path.read_text())
    except (SyntaxError, ValueError, OSError):
        return []
    notes = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = getattr(call.func, "attr", getattr(call.func, "id", ""))
        given = [k.value for k in call.keywords if k.arg == "timeout"]
        if name == "sleep" and call.args:
            given.append(call.args[0])
        for value in given:
            if isinstance(value, ast.Constant) and type(value.value) in (int, float) \
                    and value.value >= MILLISECONDS:
                seconds = value.value
                notes.append(f"line {call.lineno}: {name}(... {seconds:g}) waits {seconds:g} "
                             f"seconds here: {in_seconds(seconds)}")
    return notes


def _record_crashes() -> None:
    """How each process ends is recorded, so ``ask`` can say it even when the process
    was gone before it was asked; crashes are not printed (the checks crash some on
    purpose): ``ask`` tells the learner what ended theirs instead."""
    from . import _process
    from ._exercises import EXITS

    def body(proc, fun, args):
        reason = "normal"
        try:
            fun(*args)
        except _process.ProcessExit as exc:    # a signal's (Process.exit, a link)
            reason = proc.exit_reason if proc.exit_reason is not None else exc.reason
        except SystemExit:
            pass
        except BaseException as exc:          # noqa: BLE001 - what ended it, to tell
            reason = exc
        EXITS[proc.pid.num] = reason
        return reason
    _process._body = body


def _import(path: Path, root: Path):
    """The learner's module, or None after saying in one line why it cannot be."""
    done: list = []

    def load():
        try:
            done.append(_load(path, path.stem))
        except SyntaxError as exc:
            done.append(f"{path.relative_to(root)}, line {exc.lineno}: {exc.msg} "
                        f"(a syntax error: Python could not read the file)")
        except BaseException as exc:
            done.append(f"importing {path.relative_to(root)} raised {type(exc).__name__}: "
                        f"{exc} (at line {line_in(exc.__traceback__, path)})")
    loader = threading.Thread(target=load, daemon=True, name="pydist-check-import")
    loader.start()
    loader.join(IMPORT_TIMEOUT)
    if not done:
        frame, line = sys._current_frames().get(loader.ident), "?"
        while frame is not None:
            if frame.f_code.co_filename == str(path):
                line = frame.f_lineno
                break
            frame = frame.f_back
        print(f"  importing {path.relative_to(root)} did not finish within "
              f"{IMPORT_TIMEOUT:g} s: code at the top level of your file blocks, at line "
              f"{line}. Move code that tries things out under `if __name__ == \"__main__\":`")
        return None
    if isinstance(done[0], str):
        print(f"  {done[0]}")
        return None
    return done[0]


def _run_task(task, exercise, path: Path, checks: Path, index: int) -> tuple[bool, str]:
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
            outcome.append((False, blame(exc, path, checks)))
    thread = threading.Thread(target=attempt, daemon=True, name="pydist-check")
    thread.start()
    started, said = time.monotonic(), False
    while True:
        thread.join(0.1)
        if outcome:
            return outcome[0]
        waited = time.monotonic() - started
        if waited >= TASK_TIMEOUT:
            return False, stuck(thread, path, TASK_TIMEOUT)
        wait = waiting(thread, path)
        if waited >= HOPELESS_AFTER and wait and wait.hopeless:
            return False, wait.why
        if waited >= SAY_AFTER and not said:          # never silent for longer
            where = wait.what if wait else line_of(thread, path, checks)
            print(f"  … task {index} still running after {SAY_AFTER:g} s{where}; "
                  f"stopped at {TASK_TIMEOUT:g} s", flush=True)
            said = True


# ---------------------------------------------------------------- the command

def main(number: str | None, *, all_: bool = False, solutions: bool = False,
         task: int | None = None, hint: int | None = None, reset_: bool = False,
         progress: bool = False) -> int:
    root = course_root()
    if progress:
        return show_progress(root)
    if number and not all_ and not number.isdigit():
        print(f"there is no exercise {number!r}: exercises are numbered, as their notebooks "
              f"(01 to {max(NOTEBOOKS)}): python3 course.py check 04")
        return 2
    if not all_ and not number:
        print("usage: python3 course.py check 04   (--task 2: one task; --hint 2: a hint; "
              "--all; --progress; --reset 04; --solutions checks the solutions)")
        return 2
    numbers = list(NOTEBOOKS) if all_ else [f"{int(number):02d}"]
    if hint is not None:
        return show_hint(root, numbers[0], hint)
    if reset_:
        return reset(root, numbers[0])
    kind = "solutions" if solutions else "exercises"
    worst = 0
    path, state = _state(root)
    for n in numbers:
        started = time.monotonic()
        results_file = root / "exercises" / f".results-{os.getpid()}.json"
        try:
            code = subprocess.run([sys.executable, "-m", "pydist._checker", "run", n, kind,
                                   str(task or 0), str(results_file)],
                                  timeout=RUN_TIMEOUT, cwd=root).returncode
        except subprocess.TimeoutExpired:
            print(f"exercise {n} did not finish within {RUN_TIMEOUT:g} s")
            code = 1
        if not solutions and results_file.exists():
            done = json.loads(results_file.read_text())
            state.setdefault("results", {}).setdefault(n, {}).update(done)
        results_file.unlink(missing_ok=True)
        worst = max(worst, code)
        print(f"  ({time.monotonic() - started:.1f} s)\n")
    if not solutions:
        _save(path, state)
    return worst


def quiet_when_piped(fun, *args, **kwargs) -> int:
    """``fun(...)``; when its output goes to a reader that has gone (``check 02 | head``),
    the rest is dropped without a traceback, as a Unix tool's is."""
    try:
        code = fun(*args, **kwargs)
        sys.stdout.flush()            # a buffered stdout meets the closed pipe only here
        return code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"] and len(sys.argv) == 6:
        code = quiet_when_piped(_run, sys.argv[2], sys.argv[3], int(sys.argv[4]) or None,
                                sys.argv[5])
        sys.stdout.flush()
        os._exit(code)                    # abandon any task thread still running
    print("usage: python -m pydist._checker run NN exercises|solutions TASK RESULTS_FILE")
    sys.exit(2)
