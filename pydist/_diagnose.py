"""Why a check's task failed, read from the task itself: whose exception it was, and
where the learner's code waits when a task does not end (ExUnit's failure report plays
this part for Elixir: the test, the line, the cause).

A wait that cannot end in time (a receive() or rpc.call() with no timeout, or one in
milliseconds, Elixir's habit) is seen on the task thread's stack and named at once,
not after the task's whole time limit.
"""

from __future__ import annotations

import linecache
import os
import re
import sys
import threading
import traceback
from pathlib import Path

from ._errors import MILLISECONDS

__all__ = ["blame", "waiting", "line_of", "stuck", "line_in"]

_PYDIST = os.path.dirname(os.path.abspath(__file__))


def line_in(tb, path: Path) -> str:
    lines = [f.lineno for f in traceback.extract_tb(tb) if f.filename == str(path)]
    return str(lines[-1]) if lines else "?"



def blame(exc: Exception, path: Path, checks: Path) -> str:
    """Whose exception: the learner's code, the check's own time limit, the check given
    something it cannot use, or one of the check's own steps?"""
    stack = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in stack if not f.filename.startswith(_PYDIST)]
    last = frames[-1].filename if frames else ""
    mine = line_in(exc.__traceback__, path)
    if isinstance(exc, TimeoutError) and last.startswith(str(checks)):
        return ("the check waited for an answer that never came: did your code send it, "
                "to the process that asked?")
    if last.startswith(str(checks)) and mine == "?":
        check = frames[-1]
        step = (f"`{(check.line or '').strip()}` (line {check.lineno} of "
                f"{Path(check.filename).name})")
        if stack[-1].filename == check.filename:      # it choked on what it was given
            return (f"the check could not use what your code returned or sent: "
                    f"{type(exc).__name__}: {exc}, in the check's {step}: compare it with "
                    f"the task's docstring")
        return f"the check's own step {step} failed: {type(exc).__name__}: {exc}"
    return f"your code raised {type(exc).__name__}: {exc} (at line {mine} of {path.name})"


class _Wait:
    """Where the learner's code waits: ``what`` (for "still running ..."), ``why`` (the
    cause, in the learner's words) and whether waiting longer can help (``hopeless``)."""

    def __init__(self, what: str, why: str, hopeless: bool):
        self.what, self.why, self.hopeless = what, why, hopeless


def _frames(thread: threading.Thread):
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        yield frame
        frame = frame.f_back


def line_of(thread: threading.Thread, path: Path, checks: Path | None = None) -> str:
    """Where the task is: at a line of the learner's file, else of the check itself
    (starting a node, say), with that line's text."""
    inner_check = None
    for frame in _frames(thread):
        name = frame.f_code.co_filename
        if name == str(path):
            return _at(frame, path.name)
        if checks is not None and inner_check is None and name.startswith(str(checks)):
            inner_check = frame
    if inner_check is not None:
        return _at(inner_check, f"the check {Path(inner_check.f_code.co_filename).name}")
    return ""


def _at(frame, where: str) -> str:
    source = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f", at line {frame.f_lineno} of {where}" + (f" (`{source}`)" if source else "")


SPAWN_CALLS = re.compile(r"\bspawn\(\s*([\w.]+)\(")     # spawn(loop([])): loop runs here


def _called_not_spawned(thread: threading.Thread, path: Path) -> _Wait | None:
    """``spawn(handle_stock([]))`` runs handle_stock in the caller, for ever, before
    spawn is even called: seen as a learner's line with that shape below the top."""
    for frame in list(_frames(thread))[1:]:
        if frame.f_code.co_filename != str(path):
            continue
        source = linecache.getline(str(path), frame.f_lineno).strip()
        called = SPAWN_CALLS.search(source)
        if called:
            fun = called[1]
            why = (f"line {frame.f_lineno} of {path.name}, `{source}`, calls {fun} here, in the "
                   f"caller, where it runs for ever, instead of in a new process: give spawn "
                   f"the function and its arguments, spawn({fun}, ...), not {fun}(...)")
            return _Wait(f", in {fun} called at line {frame.f_lineno} of {path.name}", why, True)
    return None


def waiting(thread: threading.Thread, path: Path) -> _Wait | None:
    """The learner's code waiting in receive() or rpc.call(), seen on the task's stack:
    with no timeout, or with one in milliseconds (Elixir's habit), it cannot end in time."""
    spawned = _called_not_spawned(thread, path)
    if spawned:
        return spawned
    call, line = None, None
    for frame in _frames(thread):               # innermost first
        code = frame.f_code
        if code.co_filename.startswith(_PYDIST) and call is None and line is None:
            if code.co_name == "receive" and code.co_filename.endswith("_process.py"):
                call = ("receive()", "receive(timeout=...)", frame.f_locals.get("timeout"))
            elif code.co_name in ("call", "multicall") and code.co_filename.endswith("rpc.py"):
                call = (f"rpc.{code.co_name}()", f"rpc.{code.co_name}(..., timeout=...)",
                        frame.f_locals.get("timeout"))
        elif code.co_filename == str(path):
            line = frame.f_lineno
            break
    if call is None or line is None:
        return None
    name, fix, timeout = call
    at = f"line {line} of {path.name}"
    what = f": your code waits in {name} at {at} (timeout={timeout!r})"
    if timeout is None:
        if name == "receive()":
            why = (f"your code waits in receive() with no timeout ({at}), and the message "
                   f"never came: give it one, {fix}")
        else:
            why = (f"your code waits in {name} with no timeout ({at}): a node that does not "
                   f"answer (busy, frozen, cut off) holds it for ever. Give it one: {fix}")
        return _Wait(what, why, True)
    if isinstance(timeout, (int, float)) and timeout >= MILLISECONDS:
        why = (f"your code waits in {name} with timeout={timeout!r} ({at}): that is "
               f"{timeout:g} seconds (pydist counts seconds; Elixir's `after {timeout:g}` "
               f"and :rpc.call's timeout count milliseconds). For {timeout / 1000:g} s "
               f"write timeout={timeout / 1000:g}")
        return _Wait(what, why, True)
    return _Wait(what, "", False)


def stuck(thread: threading.Thread, path: Path, task_timeout: float) -> str:
    """Why a task did not finish: a receive with no time limit in the learner's code is
    the commonest cause, and it can be seen on the thread's stack."""
    frame, waiting_forever, line = sys._current_frames().get(thread.ident), False, None
    while frame is not None:
        code = frame.f_code
        if code.co_name == "receive" and code.co_filename.startswith(_PYDIST):
            waiting_forever = frame.f_locals.get("timeout", 0) is None
        elif code.co_filename == str(path) and line is None:
            line = frame.f_lineno
        frame = frame.f_back
    if waiting_forever and line is not None:
        return (f"your code waits in receive() with no timeout (line {line} of {path.name}), "
                f"and the message never came: give it one, receive(timeout=...)")
    if line is None:
        return f"did not finish within {task_timeout:g} s: a loop that never ends?"
    source = linecache.getline(str(path), line).strip()
    return (f"did not finish within {task_timeout:g} s; it was at line {line} of {path.name}, "
            f"`{source}`: a loop that never ends, or a wait longer than that?")
