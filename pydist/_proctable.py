"""The process table: every local process, the registry and the node monitors.

Elixir's twin is the BEAM's own process table: one place that knows each live process
by its pid and by its registered name, hands out pids and references, and, when a
process ends, makes it dead to the whole cluster at once (name freed, monitors told,
links signalled). One object, ``_table``, guarded by one lock; ``_process`` builds
spawn, send and receive on it, and every layer above reads it.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
import time

from . import _light, _names, _pids
from ._console import console
from ._errors import ProcessExit, PydistError
from ._mailbox import Proc
from ._pids import Pid, Ref

__all__ = ["FIRST_PID", "FIRST_SYSTEM", "USER", "_table", "_exited", "cancel_stop",
           "_async_exc"]

FIRST_PID = 100                 # small numbers read like Erlang's <0.112.0>
USER = 1                        # <0.1.0>: the node's own console, Erlang's `user`
FIRST_SYSTEM = 10               # the node's own servers (global, pg): <0.10.0> up, as
                                # Erlang's are low, so a learner's pids read the same in
                                # every run, whatever the node started for itself


# ---------------------------------------------------------------- the process table

class _Table:
    """Every local process, the registry and the node monitors: one object, one lock."""

    def __init__(self):
        self.lock = threading.RLock()
        self.procs: dict[int, Proc] = {}
        self.names: dict[str, Proc] = {}
        self.counter = itertools.count(FIRST_PID)
        self.system_counter = itertools.count(FIRST_SYSTEM)
        self.refs = itertools.count(1)
        self.local = threading.local()
        self.dist = None                 # the running distribution (_node.Dist) or None
        self.name = _names.NO_NODE       # its node name (set_dist keeps both in step)
        self.node_indexes: dict[str, int] = {}
        self.idle_changed = threading.Condition(threading.Lock())
        self.main_proc: Proc | None = None     # the notebook's or prompt's process
        self.quiet_waiters = 0
        self.serving: set[int] = set()          # threads running an rpc call right now
        self.aliases: dict[int, Proc] = {}      # active aliases (GenServer.call): ref -> owner
        self.linked_exit = lambda pid, links, reason: None   # set by _signals

    def dist_required(self, what: str):
        if self.dist is None:
            raise PydistError(f"{what}: this process is not a node yet; "
                              f"call Node.start('name') first")
        return self.dist

    def set_dist(self, dist) -> None:
        self.dist = dist
        self.name = dist.name if dist is not None else _names.NO_NODE

    def node_index(self, node: str) -> int:
        """The number that stands for another node in pids, e.g. 19214 in <19214.112.0>.
        Taken from the node's name so it reads the same in every run; unique here."""
        with self.lock:
            index = self.node_indexes.get(node)
            if index is None:
                index = 10000 + sum(ord(c) * 131 ** i for i, c in
                                    enumerate(node.split("@")[0])) % 80000
                while index in self.node_indexes.values():
                    index += 1
                self.node_indexes[node] = index
            return index

    def new_proc(self, group_leader: Pid | None, spawned: bool, system: bool = False,
                 light: tuple | None = None) -> Proc:
        """A new process in the table; ``light``: (run, fun, args) of a light one."""
        num = next(self.system_counter) if system else FIRST_PID
        pid = Pid(None, num if num < FIRST_PID else next(self.counter))
        proc = (Proc(pid, group_leader, spawned) if light is None
                else _light.LightProc(pid, group_leader, light))
        with self.lock:
            self.procs[proc.pid.num] = proc
        return proc

    def current(self) -> Proc:
        proc = getattr(self.local, "proc", None)
        if proc is not None and proc.exit_reason is not None:
            _exited(proc)            # a signal killed it: raises ProcessExit
        if proc is None:             # a thread that pydist did not start: adopt it
            console.install()
            leader = getattr(self.local, "leader", None)     # set while serving an rpc
            proc = self.local.proc = self.new_proc(leader, spawned=False)
            if threading.current_thread() is threading.main_thread():
                self.main_proc = proc
        return proc

    def make_ref(self) -> Ref:
        return Ref(None, next(self.refs))

    def lookup(self, pid: Pid) -> Proc | None:
        proc = self.procs.get(pid.num)
        return proc if proc is not None and proc.alive else None

    def exit(self, proc: Proc, reason) -> bool:
        """``proc`` has ended with ``reason``: it is dead to the whole cluster at once
        (name freed, messages to it dropped), its monitors get DOWN and its links an
        exit signal (``_signals``). False if it had ended already."""
        with self.lock:
            if not proc.alive:
                return False
            proc.alive = False
            self.procs.pop(proc.pid.num, None)
            if proc.name is not None and self.names.get(proc.name) is proc:
                del self.names[proc.name]
            watchers, proc.watchers = proc.watchers, {}
            links, proc.links = proc.links, set()
            for alias in proc.aliases:
                self.aliases.pop(alias, None)
        for ref, (watcher, target) in watchers.items():
            self.down(watcher, ref, target, reason)
        if links:
            self.linked_exit(proc.pid, links, reason)
        self.note_idle()
        return True

    def down(self, watcher: Pid, ref: Ref, target, reason) -> None:
        """Tell ``watcher`` (local or remote) that a monitored ``target`` is gone."""
        if watcher.is_local():
            proc = self.lookup(watcher)
            if proc is not None:
                proc.deliver(("DOWN", ref, "process", target, reason))
        elif self.dist is not None:
            self.dist.send_down(watcher, ref, target, reason)

    def note_idle(self) -> None:
        if self.quiet_waiters:               # only settle() waits: skip the lock otherwise
            with self.idle_changed:
                self.idle_changed.notify_all()

    def quiet(self, timeout: float) -> bool:
        """Wait until every spawned process waits in receive (or is gone) and no rpc
        call is running here."""
        deadline = time.monotonic() + timeout
        with self.idle_changed:
            self.quiet_waiters += 1
            try:
                return self._wait_quiet(deadline)
            finally:
                self.quiet_waiters -= 1

    def _wait_quiet(self, deadline: float) -> bool:
        while True:
            busy = self.serving or [p for p in list(self.procs.values())
                                    if p.spawned and p.alive and not p.idle]
            remaining = deadline - time.monotonic()
            if not busy:
                return True
            if remaining <= 0:
                return False
            self.idle_changed.wait(min(remaining, 0.01))


_table = _Table()
_pids._table = _table
_light.scheduler.local = _table.local          # self() in a light process: set as it runs
console.remote_leader = lambda: _remote_writer()
console.settle = console.settle_local = lambda: _table.quiet(1.0)
console.wake = lambda: _wake_main()


def _wake_main() -> None:
    proc = _table.main_proc
    if proc is not None:
        proc.signal()


def _remote_writer():
    local = _table.local
    proc = getattr(local, "proc", None)
    leader = proc.group_leader if proc is not None else getattr(local, "leader", None)
    if leader is None or leader._node is None or _table.dist is None:
        return None
    dist = _table.dist
    return lambda stream, text: dist.send_io(leader, stream, text)


# ---------------------------------------------------------------- a process's own end

def _exited(proc: Proc):
    """Raise the ProcessExit of ``proc``, which a signal killed, in its own thread. A
    stop sent to this thread meanwhile is cancelled first (under the guard, so that no
    other comes): one exit, never two."""
    if proc.guard is not None:
        with proc.guard:
            proc.exiting = True
            cancel_stop()
    elif proc is getattr(_table.local, "proc", None):   # the notebook's: a new one next
        _table.local.proc = None
        if _table.main_proc is proc:
            _table.main_proc = None
    raise ProcessExit(proc.exit_reason, f"process {proc.pid!r} exited with reason "
                      f"{proc.exit_reason!r}" + ("" if proc.spawned else "; this thread gets "
                                                 "a new pid (as iex's shell after an exit)"))


def cancel_stop() -> None:
    """Cancel a stop (an asynchronous ProcessExit) pending for this thread."""
    _async_exc(threading.get_ident(), None)


def _async_exc(ident: int, exc) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                               ctypes.py_object(exc) if exc else None)
