"""Where printed text goes: Erlang's group leaders, for Python's ``print``.

Every process has a *group leader*: the process its output belongs to. A process
started by ``rpc.call`` or ``Node.spawn`` on another node has the caller as its
group leader, so what it prints travels back and appears where the call was made,
as in Erlang. Output of a node's own processes goes to that node's console; the
console of a peer (``peer.start``) forwards to its starter, labelled with the
peer's name.

Jupyter drops or misplaces text that a background thread prints once its cell has
finished, so under a kernel the console is *deferred*: text from other threads
waits until the notebook's own thread prints it, at the next pydist call that
waits (``receive``, ``rpc.call``, ...) or at the end of the cell, when pydist first
lets the nodes the cell talked to finish what they were doing. Lines labelled with
another node's name are printed at the end of the cell, in the order they were
printed on their nodes, so a cell shows the same output on every run.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections import deque
from typing import Callable

__all__ = ["console"]

STDOUT, STDERR = 1, 2


class _Router(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr once pydist is in use."""

    def __init__(self, stream: int, real):
        self.stream, self.real = stream, real

    def write(self, text: str) -> int:
        if text:
            console.write(self.stream, text)
        return len(text)

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return self.real.isatty()

    @property
    def encoding(self):
        return getattr(self.real, "encoding", "utf-8")

    def fileno(self) -> int:
        return self.real.fileno()

    def __getattr__(self, name: str):
        # Whatever else the stream offers (ipykernel's set_parent, which ties output
        # to the running cell, above all) is the real stream's.
        return getattr(self.real, name)


class Console:
    def __init__(self):
        self.deferred = False          # True under a Jupyter kernel
        self.pending: deque[tuple[int, str]] = deque()
        self.held: list[tuple[float, int, int, str]] = []   # other nodes' lines (Jupyter)
        self.lock = threading.Lock()
        # Hooks that the process and node layers fill in:
        self.remote_leader: Callable[[], object] = lambda: None   # -> send(stream, text) or None
        self.forward: Callable[[int, str, str | None, float | None], bool] | None = None
        self.wake: Callable[[], None] = lambda: None
        self.settle: Callable[[], None] = lambda: None
        self.settle_local: Callable[[], None] = lambda: None
        self.dirty = False             # a cell did something remote: settle at its end
        self._lines: dict[tuple[int, str | None], str] = {}
        self._installed = False

    # -- set-up
    def install(self) -> None:
        """Route sys.stdout/sys.stderr through pydist (idempotent)."""
        if self._installed:
            return
        self._installed = True
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(STDOUT, sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(STDERR, sys.stderr)
        ip = _ipython()
        if ip is not None and getattr(ip, "kernel", None) is not None:
            self.deferred = True
            ip.events.register("post_run_cell", self._after_cell)

    def _after_cell(self, *_args) -> None:
        if self.dirty:
            self.dirty = False
            try:
                self.settle()
            except Exception as exc:           # never break the learner's notebook
                self._real(STDERR).write(f"pydist: could not settle output: {exc}\n")
        self.drain()
        self.drain_held()

    # -- writing
    def write(self, stream: int, text: str) -> None:
        """Text printed by this thread: to its group leader, or to this node's console."""
        remote = self.remote_leader()
        if remote is not None:
            remote(stream, text)
        else:
            self.emit(stream, text, None)

    def emit(self, stream: int, text: str, label: str | None,
             stamp: float | None = None) -> None:
        """Text for this node's console. ``label`` names the other node that printed
        it and ``stamp`` says when (its ``time.monotonic()``: one clock per machine)."""
        if self.forward is not None:
            line_key = (stream, label)
            with self.lock:
                buffered = self._lines.pop(line_key, "") + text
                complete, _, rest = buffered.rpartition("\n")
                if rest:
                    self._lines[line_key] = rest
            if complete and self.forward(stream, complete + "\n", label, stamp):
                return
            if not complete:
                return
            text = complete + "\n"
        if label:
            text = "".join(f"[{label}] {line}" for line in text.splitlines(keepends=True))
            if self.deferred:
                # Lines of different nodes come over different connections, so they
                # can arrive out of order: hold them to the end of the cell and print
                # them in the order they were printed.
                with self.lock:
                    self.held.append((time.monotonic() if stamp is None else stamp,
                                      len(self.held), stream, text))
                return
        if self.deferred and threading.current_thread() is not threading.main_thread():
            self.pending.append((stream, text))
            self.wake()
        else:
            self._real(stream).write(text)

    def drain(self) -> None:
        """Print what other threads left for the main thread (deferred mode)."""
        while self.pending:
            stream, text = self.pending.popleft()
            self._real(stream).write(text)

    def drain_held(self) -> None:
        """Print the other nodes' lines held for the end of the cell, oldest first."""
        with self.lock:
            held, self.held = sorted(self.held), []
        for _stamp, _seq, stream, text in held:
            self._real(stream).write(text)

    @staticmethod
    def _real(stream: int):
        out = sys.stdout if stream == STDOUT else sys.stderr
        return out.real if isinstance(out, _Router) else out


def _ipython():
    if "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


console = Console()
