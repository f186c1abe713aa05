"""Processes: pids and the process table; spawn, send, receive, flush.

A pydist process is a Python thread with a mailbox (``_mailbox.Proc``), as close to
an Erlang process as threads allow. The thread running a notebook or the prompt is a process too:
``self()`` gives it a pid the first time it asks, like the iex shell.

Erlang's receive loops are tail-recursive; Python has no tail calls, so the
same loop is written ``while True: msg = receive(); ...``.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import time
from typing import Any, Callable

from . import _names, _pids
from ._console import console
from ._errors import ProcessExit, PydistError, user_traceback
from ._mailbox import NOTHING, Proc
from ._pids import AliasTag, Pid, Ref, pid_to_list
from ._transport import REG_SEND, SEND

__all__ = ["Pid", "Ref", "spawn", "self", "send", "receive", "flush", "pid_to_list", "USER",
           "shielded", "new_process", "start_process", "AliasTag", "alias_send"]

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

    def new_proc(self, group_leader: Pid | None, spawned: bool, system: bool = False) -> Proc:
        num = next(self.system_counter) if system else FIRST_PID
        proc = Proc(Pid(None, num if num < FIRST_PID else next(self.counter)),
                    group_leader, spawned)
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


# ---------------------------------------------------------------- spawn / send / receive

def spawn(fun: Callable, *args, group_leader: Pid | None = None) -> Pid:
    """Elixir: ``spawn(fn -> ... end)`` / ``spawn(Mod, :fun, [args])``.

    Starts ``fun(*args)`` as a new process and returns its pid at once. If ``fun``
    raises, the process dies alone: the error is printed and its monitors get
    ``("DOWN", ref, "process", pid, exception)``.

        >>> pid = spawn(print, "hello")
    """
    if not callable(fun):
        raise TypeError(f"spawn takes a function and its arguments, e.g. "
                        f"spawn(handle_stock, []); {fun!r} is not callable")
    parent = getattr(_table.local, "proc", None)
    if group_leader is None and parent is not None:
        group_leader = parent.group_leader       # inherited, as in Erlang
    proc = new_process(fun, args, group_leader)
    start_process(proc)
    return proc.pid


def spawn_system(fun: Callable, *args) -> Pid:
    """``spawn`` for a server of the node's own (global's, a pg scope's): a low pid."""
    proc = new_process(fun, args, None, system=True)
    start_process(proc)
    return proc.pid


def new_process(fun: Callable, args: tuple, group_leader: Pid | None,
                system: bool = False) -> Proc:
    """A spawned process, not started yet (spawn_link links it first)."""
    console.install()
    console.dirty = True
    proc = _table.new_proc(group_leader, spawned=True, system=system)
    proc.thread = threading.Thread(target=_run, args=(proc, fun, args), daemon=True,
                                   name=f"pydist-{pid_to_list(proc.pid)}")
    return proc


def start_process(proc: Proc) -> None:
    try:
        proc.thread.start()
    except RuntimeError as exc:                  # "can't start new thread"
        _table.exit(proc, "noproc")
        raise PydistError(f"spawn: this node cannot start another process ({exc}); "
                          f"{len(_table.procs)} are running: let some finish first") from None


def _run(proc: Proc, fun: Callable, args: tuple) -> None:
    _table.local.proc = proc
    try:
        reason = _body(proc, fun, args)
    except ProcessExit:              # a stop that landed after fun: the signal's reason
        reason = proc.exit_reason
    try:
        _table.exit(proc, reason)    # (done already if a signal killed it)
        with proc.guard:             # from here on, no stop lands in this thread
            proc.exiting = True
    except ProcessExit:              # landed in the two lines above: the killer ended it
        pass


def _body(proc: Proc, fun: Callable, args: tuple):
    """Run the process's function; its exit reason."""
    try:
        fun(*args)
    except ProcessExit as exc:
        return proc.exit_reason if proc.exit_reason is not None else exc.reason
    except SystemExit:
        pass
    except BaseException as exc:                 # a process dies alone
        where = f"on node {_table.name} " if _table.dist is not None else ""
        print(f"Process {proc.pid!r} {where}raised an exception\n{user_traceback(exc)}",
              end="", file=sys.stderr)
        return exc
    return "normal"


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
    import ctypes
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                               ctypes.py_object(exc) if exc else None)


def self() -> Pid:
    """Elixir: ``self()``. The pid of the calling process (the notebook has one too)."""
    proc = getattr(_table.local, "proc", None)
    return (proc if proc is not None and proc.exit_reason is None else _table.current()).pid


def send(dest, msg):
    """Elixir: ``send(dest, msg)``; returns ``msg``.

    ``dest`` is a pid (local or remote), a name registered on this node, or a
    ``(name, node)`` pair for a name registered on another node. Sending to a dead
    pid or to a name another node does not know is silently dropped, as in Erlang;
    sending to a name nobody registered *here* raises ``ValueError``.
    """
    me = getattr(_table.local, "proc", None)
    if me is None or me.guard is None:
        _send(dest, msg)
    else:                             # a spawned process: a stop never lands mid-send
        with me.guard:
            if me.exit_reason is None:
                _send(dest, msg)
    if me is not None and me.exit_reason is not None:
        _exited(me)
    return msg


class shielded:
    """``with shielded():`` what a spawned process writes to a connection is written
    whole: a stop (see _signals) waits until the block ends, then lands."""

    __slots__ = ("proc",)

    def __enter__(self):
        me = self.proc = getattr(_table.local, "proc", None)
        if me is not None and me.guard is not None:
            me.guard.acquire()
            if me.exit_reason is not None:
                me.guard.release()
                _exited(me)

    def __exit__(self, *exc):
        me = self.proc
        if me is not None and me.guard is not None:
            me.guard.release()
            if me.exit_reason is not None and exc[0] is None:
                _exited(me)


def _send(dest, msg) -> None:
    console.dirty = True
    if isinstance(dest, Pid):
        if dest._node is None:
            proc = _table.procs.get(dest.num)
            if proc is not None:
                proc.deliver(msg)
        elif _table.dist is not None:
            # A BEAM node's pid (_etf.ErlPid) travels whole: its serial and creation count.
            where = dest.num if type(dest) is Pid else dest
            _table.dist.send_item(dest._node, _item(SEND, where, msg))
    elif isinstance(dest, str):
        _local_name(dest, msg).deliver(msg)
    elif (isinstance(dest, tuple) and len(dest) == 2 and isinstance(dest[0], str)
          and isinstance(dest[1], str)):
        name, node = dest
        if node == _table.name:
            _local_name(name, msg).deliver(msg)
        elif _table.dist is not None:
            _table.dist.send_item(node, _item(REG_SEND, name, msg))
    else:
        raise TypeError(f"send: cannot send to {dest!r}; send to a pid, a registered name "
                        f"like 'product_stock', or ('name', 'node@host')")


def alias_send(alias, msg) -> None:
    """A message to an alias of a process here (a Ref or its number): delivered while
    the alias is active, else dropped (Erlang: ``send(alias, msg)``)."""
    proc = _table.aliases.get(alias if type(alias) is int else alias.num)
    if proc is not None and (type(alias) is int or alias.is_local()):
        proc.deliver(msg)


def _item(op: int, where, msg) -> tuple:
    """The wire item for ``send``. The idiom ``(self(), request)`` travels with the pid
    as two plain values (see _transport): pickling a Pid costs a class lookup at
    each end, as much as the rest of a small message."""
    if type(msg) is tuple and len(msg) == 2 and type(msg[0]) is Pid:
        pid = msg[0]
        return (op, where, msg[1], pid._node or _table.name, pid.num)
    return (op, where, msg)


def item_message(item: tuple):
    """The message of a SEND or REG_SEND item: ``_item``'s inverse."""
    return item[2] if len(item) == 3 else (Pid(item[3], item[4]), item[2])


@contextlib.contextmanager
def running_call(leader: Pid | None, caller: Pid | None = None):
    """This thread (of the call pool) runs a call from another node: what it prints goes
    to ``leader``; if the call asks ``self()``, the process it gets ends with the call.
    ``caller``, the process that asked, is who ``GenServer.start_link`` links to."""
    local = _table.local
    local.leader, local.proc, local.caller = leader, None, caller
    try:
        yield
    finally:
        if local.proc is not None:
            _table.exit(local.proc, "normal")
        local.leader = local.proc = local.caller = None


def _local_name(name: str, msg) -> Proc:
    proc = _table.names.get(name)
    if proc is None or not proc.alive:
        raise ValueError(f"send({name!r}, {msg!r}): no process is registered as {name!r} "
                         f"on this node (Process.registered() lists them); for a name on "
                         f"another node send to ({name!r}, 'node@host')")
    return proc


def receive(timeout: float | None = None, match: Callable[[Any], bool] | None = None):
    """Elixir: ``receive do ... after ms -> ... end``.

    Returns the next message, or with ``match`` the first one for which
    ``match(msg)`` is true (the others stay queued, in order). Waits forever when
    ``timeout`` is None, else raises ``TimeoutError`` after ``timeout`` seconds.

        >>> msg = receive(timeout=0.5)
        >>> reply = receive(match=lambda m: m[0] == "print")
    """
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
        raise ValueError(f"receive: timeout is seconds (a number >= 0) or None, not {timeout!r}")
    if match is not None and not callable(match):
        raise TypeError(f"receive: match must be a function msg -> bool, not {match!r}")
    proc = getattr(_table.local, "proc", None) or _table.current()
    main = proc is _table.main_proc
    start, deadline = 0, None
    while True:
        if proc.exit_reason is not None:
            _exited(proc)
        if main and console.pending:
            console.drain()
        msg, start = proc.take(match, start)
        if msg is not NOTHING:
            proc.idle = False
            return msg
        remaining = -1
        if timeout is not None:
            if deadline is None:
                deadline = time.monotonic() + timeout
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                what = "no message" if match is None else "no matching message"
                raise TimeoutError(f"receive: {what} arrived within {timeout} s")
        if proc.spawned and not proc.idle:
            # Say "idle" first, then look once more: a message delivered in between
            # set idle back to False itself, so settle() never sees idle with mail.
            proc.idle = True
            if _table.quiet_waiters:
                _table.note_idle()
            if len(proc.mailbox) > start:
                continue
        proc.sleep(remaining)


def flush() -> None:
    """Elixir (iex): ``flush()``. Prints every message in the mailbox and empties it."""
    messages = _table.current().clear()
    console.drain()
    for msg in messages:
        print(repr(msg))
