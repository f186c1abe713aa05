"""Processes: spawn, send, receive, flush (the table they live in: ``_proctable``).

A pydist process is a Python thread with a mailbox (``_mailbox.Proc``), as close to
an Erlang process as threads allow. The thread running a notebook or the prompt is a process too:
``self()`` gives it a pid the first time it asks, like the iex shell.

Erlang's receive loops are tail-recursive; Python has no tail calls, so the
same loop is written ``while True: msg = receive(); ...``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Any, Callable

from ._console import console
from ._errors import MILLISECONDS, ProcessExit, PydistError, check_seconds, user_traceback
from ._light import scheduler
from ._mailbox import NOTHING, Proc
from ._pids import AliasTag, Pid, Ref, pid_to_list
from ._proctable import USER, _exited, _table
from ._transport import REG_SEND, SEND

__all__ = ["Pid", "Ref", "spawn", "self", "send", "receive", "flush", "pid_to_list", "USER",
           "shielded", "new_process", "start_process", "AliasTag", "alias_send"]


# ---------------------------------------------------------------- spawn / send / receive

def spawn(fun: Callable, *args, group_leader: Pid | None = None, light: bool = False) -> Pid:
    """Elixir: ``spawn(fn -> ... end)`` / ``spawn(Mod, :fun, [args])``.

    Starts ``fun(*args)`` as a new process and returns its pid at once. If ``fun``
    raises, the process dies alone: the error is printed and its monitors get
    ``("DOWN", ref, "process", pid, exception)``.

    A process is a thread. With ``light=True`` it is a greenlet on the node's one
    scheduler thread instead (``_light``): a hundred thousand start in a second, but
    it lets the others run only while it waits in pydist (receive, Process.sleep,
    a call), so a busy loop or ``time.sleep`` in it stops them all.

        >>> pid = spawn(print, "hello")
    """
    if not callable(fun):
        raise TypeError(f"spawn takes a function and its arguments, e.g. "
                        f"spawn(handle_stock, []); {fun!r} is not callable")
    parent = getattr(_table.local, "proc", None)
    if group_leader is None and parent is not None:
        group_leader = parent.group_leader       # inherited, as in Erlang
    proc = new_process(fun, args, group_leader, light=light)
    start_process(proc)
    return proc.pid


def spawn_system(fun: Callable, *args) -> Pid:
    """``spawn`` for a server of the node's own (global's, a pg scope's): a low pid."""
    proc = new_process(fun, args, None, system=True)
    start_process(proc)
    return proc.pid


def new_process(fun: Callable, args: tuple, group_leader: Pid | None,
                system: bool = False, light: bool = False) -> Proc:
    """A spawned process, not started yet (spawn_link links it first)."""
    console.install()
    console.dirty = True
    if light:
        return _table.new_proc(group_leader, spawned=True, light=(_run_light, fun, args))
    proc = _table.new_proc(group_leader, spawned=True, system=system)
    proc.thread = threading.Thread(target=_run, args=(proc, fun, args), daemon=True,
                                   name=f"pydist-{pid_to_list(proc.pid)}")
    return proc


def start_process(proc: Proc) -> None:
    if proc.thread is None:                      # a light one: the scheduler runs it
        scheduler.start(proc)
        return
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


def _run_light(proc: Proc, fun: Callable, args: tuple) -> None:
    """A light process's greenlet (_light): as ``_run``, with no thread to stop."""
    if proc.exit_reason is None:             # else killed before it ever ran
        try:
            reason = _body(proc, fun, args)
        except ProcessExit:
            reason = proc.exit_reason
        _table.exit(proc, reason)
    proc.exiting = True


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
            _table.dist.send_item(dest._node, _item(SEND, where, msg), False)
    elif isinstance(dest, str):
        _local_name(dest, msg).deliver(msg)
    elif (isinstance(dest, tuple) and len(dest) == 2 and isinstance(dest[0], str)
          and isinstance(dest[1], str)):
        name, node = dest
        if "@" not in node:                # no node could have that name: say so now
            swapped = " (swapped? the name comes first)" if "@" in name else ""
            raise ValueError(f"send({dest!r}, ...): {node!r} is not a node name like "
                             f"'b@vm'; the destination is ('name', 'node@host'){swapped}")
        if node == _table.name:
            _local_name(name, msg).deliver(msg)
        elif _table.dist is not None:
            _table.dist.send_item(node, _item(REG_SEND, name, msg), False)
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
    """The wire item for ``send``. The idioms ``(self(), request)`` and ``(self(), a,
    b...)`` travel with the pid as two plain values (see _transport): pickling a Pid
    costs a class lookup at each end, as much as the rest of a small message."""
    if type(msg) is tuple and len(msg) >= 2 and type(msg[0]) is Pid:
        pid = msg[0]
        if len(msg) == 2:
            return (op, where, msg[1], pid._node or _table.name, pid.num)
        return (op, where, msg[1:], pid._node or _table.name, pid.num, True)
    return (op, where, msg)


def item_message(item: tuple):
    """The message of a SEND or REG_SEND item: ``_item``'s inverse."""
    if len(item) == 3:
        return item[2]
    if len(item) == 5:
        return (Pid(item[3], item[4]), item[2])
    return (Pid(item[3], item[4]), *item[2])


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
    if timeout is not None and timeout >= MILLISECONDS:     # (a receive is hot: test first)
        check_seconds("receive(timeout=...)", timeout)
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
