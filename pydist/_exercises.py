"""The exercises: stubs made from the solutions, and the helpers the checks use.

The solutions (``solutions/exNN_*.py``) are the one source of truth. Each task's code
sits between ``# BEGIN SOLUTION N`` and ``# END SOLUTION``; the stub a learner edits
(``exercises/exNN_*.py``) is the same file with those blocks replaced by a
``raise NotImplementedError``. ``python -m pydist._exercises build`` (``make
exercises``) writes the stubs; a test fails when they drift apart.

The checks (``exercises/checks/check_NN.py``) use the helpers here (``expect``,
``ask``); ``_checker`` runs them.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from pathlib import Path

__all__ = ["course_root", "stub_text", "build", "out_of_sync", "unique", "source_of",
           "started", "calls", "expect", "ask"]

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
                       f"not done yet (read its docstring; the checker gives hints)\")\n")
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


def source_of(fun) -> str:
    """``fun``'s source, or "" when it cannot be read."""
    import inspect
    try:
        return inspect.getsource(fun)
    except (OSError, TypeError):
        return ""


def started(fun) -> None:
    """Raise the stub's NotImplementedError if ``fun`` is still the untouched stub, before
    a check runs it where its crash would be far away (in a process, on another node)
    and seen only as a silence."""
    stub = re.search(r'raise NotImplementedError\("(Task \d+: not done yet[^"]*)"\)',
                     source_of(fun))
    if stub:
        raise NotImplementedError(stub[1])


def calls(fun, *names: str) -> bool | None:
    """Whether ``fun``'s code, or that of a function of its own module it calls, calls
    something named one of ``names`` (``Process.monitor`` or ``monitor``): an answer
    that is only right by luck, a hard-coded reason, shows here. None when ``fun``'s
    source cannot be read."""
    import ast
    import textwrap
    seen = set()

    def looks(f) -> bool:
        seen.add(f)
        try:
            tree = ast.parse(textwrap.dedent(source_of(f)))
        except SyntaxError:
            return False
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            name = getattr(call.func, "attr", None) or getattr(call.func, "id", None)
            helper = getattr(f, "__globals__", {}).get(name)
            if name in names or (callable(helper) and helper not in seen and
                                 getattr(helper, "__module__", None) == fun.__module__ and
                                 looks(helper)):
                return True
        return False
    return looks(fun) if source_of(fun) else None


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
                             f"{timeout:g} s: does it send its answer to the sender in the "
                             f"message (not to self(), which is the process itself)?") from None
    finally:
        Process.demonitor(ref)
        _flush_down(ref)                  # as Erlang's demonitor(ref, [:flush])
    if isinstance(answer, tuple) and answer[:2] == ("DOWN", ref):
        reason = answer[4]
        if reason == "noproc":                # gone before we asked: how, if we know
            reason = EXITS.get(getattr(pid, "num", None), reason)
        if isinstance(reason, NotImplementedError):
            raise NotImplementedError(str(reason))
        if reason == "noproc":
            raise AssertionError(f"called {called}: the process had already ended before it "
                                 f"was asked: did its function return after one message "
                                 f"(keep it in a `while True:` loop) or crash (a crash prints "
                                 f"its traceback above)?")
        if reason == "normal":
            raise AssertionError(f"called {called}: the process ended instead of answering: "
                                 f"its function returned (keep the loop going with "
                                 f"`while True:`)")
        where = [f for f in traceback.extract_tb(reason.__traceback__)
                 if os.path.basename(f.filename).startswith("ex")]
        at = f" (line {where[-1].lineno} of {os.path.basename(where[-1].filename)})" \
            if where else ""
        if isinstance(reason, RecursionError):
            at += (": Python has no tail calls, so a function that calls itself once per "
                   "message runs out of stack after about a thousand, where Elixir's loop "
                   "runs for ever. Loop with `while True:` and keep the state in a variable "
                   "(notebook 04, \"no tail calls\")")
        raise AssertionError(f"called {called}: the process crashed with "
                             f"{type(reason).__name__}: {reason}{at}")
    return answer


def _flush_down(ref) -> None:
    from pydist import receive
    try:
        receive(timeout=0, match=lambda m: isinstance(m, tuple) and m[:2] == ("DOWN", ref))
    except TimeoutError:
        pass


EXITS: dict = {}        # pid number -> how that process ended (filled by _checker)


if __name__ == "__main__":
    if sys.argv[1:2] == ["build"]:
        for stub in build():
            print("wrote", stub)
        sys.exit(0)
    print("usage: python -m pydist._exercises build")
    sys.exit(2)
