"""The two exception types of pydist, in one place (as Pyro5 keeps its errors).

``PydistError`` is the base for every failure that is about distribution itself
(a node that cannot start, a peer that does not answer). ``BadRpc`` is the twin
of Erlang's ``{:badrpc, reason}``: ``rpc.call`` raises it instead of returning it.
Plain mistakes in arguments raise the usual ``TypeError``/``ValueError``.
"""

from __future__ import annotations

import os
import traceback
import warnings

__all__ = ["PydistError", "BadRpc", "ProcessExit", "PydistWarning", "user_traceback",
           "check_seconds", "in_seconds", "MILLISECONDS"]

MILLISECONDS = 100           # a wait this long was most likely meant in ms (Elixir's `after 1000`)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without pydist's own frames: the learner's code and
    the error, which is what Erlang's crash reports show too."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR)]
    text = "".join(traceback.format_list(frames))
    head = "Traceback (most recent call last):\n" if frames else ""
    return head + text + "".join(traceback.format_exception_only(type(exc), exc))


class PydistWarning(UserWarning):
    """A call that works, yet is most likely not what was meant: a wait written in
    Elixir's milliseconds. Shown once per line of code, as Python's warnings are."""


def in_seconds(seconds: float) -> str:
    """What to write instead of a wait in Elixir's milliseconds (said by warnings and by
    the exercise checker alike)."""
    return f"pydist counts seconds; Elixir's {seconds:g} ms is {seconds / 1000:g}"


def check_seconds(what: str, seconds) -> None:
    """Warn when ``seconds`` looks like Elixir's milliseconds (``receive(timeout=1000)``
    waits 16 minutes): called by every pydist call that takes a wait, with the
    learner's own line named (``stacklevel``: their call, not ours)."""
    if type(seconds) in (int, float) and seconds >= MILLISECONDS:
        warnings.warn(f"{what}: {seconds:g} is {seconds:g} seconds ({seconds / 60:.0f} min) "
                      f"here: {in_seconds(seconds)}", PydistWarning, stacklevel=3)


class PydistError(Exception):
    """A distribution failure; the message says what to do next."""


class BadRpc(PydistError):
    """``rpc.call`` failed. Elixir: ``{:badrpc, reason}``.

    ``reason`` is one of:

    * ``"nodedown"``  - the node could not be reached, or was lost during the call;
    * ``"timeout"``   - no answer within ``timeout`` seconds;
    * ``"undef"``     - the module or function does not exist on that node;
    * ``"exception"`` - the function raised; ``remote_type``, ``remote_message``
      and ``remote_traceback`` tell what happened over there.
    """

    def __init__(self, reason: str, node: str = "", detail: str = "",
                 remote_type: str = "", remote_message: str = "",
                 remote_traceback: str = ""):
        super().__init__(reason, node, detail)
        self.reason = reason
        self.node = node
        self.detail = detail
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        text = f"{self.reason}: {self.detail}" if self.detail else self.reason
        if self.remote_traceback:
            bar = f"--- remote traceback (on {self.node}) ---"
            text += f"\n\n{bar}\n{self.remote_traceback.rstrip()}\n{'-' * len(bar)}"
        return text

    def __repr__(self) -> str:
        return f"BadRpc({self.reason!r})"

    def __reduce__(self):
        return (_rebuild_badrpc, (self.reason, self.node, self.detail, self.remote_type,
                                  self.remote_message, self.remote_traceback))


class ProcessExit(BaseException):
    """The calling process exits with ``reason``. Elixir: ``exit(reason)``, and what a
    process meets when an exit signal kills it (``Process.exit(pid, :kill)``, a linked
    process's crash) or when ``GenServer.call`` gives up.

    Like Elixir's exits, it is not an error: ``except Exception`` does not catch it
    (Elixir's ``rescue`` does not catch exits either); ``except ProcessExit`` does.
    ``raise ProcessExit("shutdown")`` ends a process with that reason."""

    def __init__(self, reason="normal", detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return self.detail or f"the process exited with reason {self.reason!r}"

    def __reduce__(self):
        return (ProcessExit, (self.reason, self.detail))


def _rebuild_badrpc(*args) -> BadRpc:
    return BadRpc(*args)
