"""Links and exit signals. Elixir: ``Process.link/unlink/exit``, ``spawn_link``,
``Process.flag(:trap_exit, true)``, ``Process.sleep`` — between pydist processes and
across the border, as Erlang defines them (measured with Elixir 1.14 / OTP 25):

    a process ends with reason R        each process linked to it gets an exit signal R
    Process.exit(pid, R)                pid gets an exit signal R
    its node is lost                    a link to it gives the signal "noconnection"

    a process that gets an exit signal R:
      from Process.exit, R == "kill"    dies with "killed", trapping exits or not
      it traps exits                    gets ("EXIT", from, R) as a message instead
      R == "normal"                     nothing happens (unless it sent it to itself)
      anything else                     dies with R, and its own links get R in turn

A process that dies this way is dead to the whole cluster at once: its name is free,
messages to it are dropped, its monitors get DOWN and its links their signal. Then its
thread is stopped, as far as a thread can be:

- waiting in ``receive``, ``Process.sleep``, ``rpc.call`` or ``GenServer.call``: it is
  woken and raises ``ProcessExit`` at once;
- running Python code: CPython raises ``ProcessExit`` in it asynchronously, at its next
  bytecode (``PyThreadState_SetAsyncExc``), but never half-way through a send: the
  process's guard (``_process.shielded``) holds the stop until the send is done;
- blocked in C (``time.sleep``, a socket, a C extension): abandoned. The exception
  lands if the call ever returns; nothing waits for it. Use ``Process.sleep``.

The thread of a notebook or a prompt is never stopped from outside: its next pydist
call raises ``ProcessExit``, and it gets a new pid, as iex's shell does after an exit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

from ._errors import ProcessExit, PydistError, check_seconds
from ._mailbox import Proc
from ._process import Pid, new_process, start_process
from ._proctable import _async_exc, _exited, _table
from ._transport import EXIT, LINK, UNLINK

__all__ = ["link", "unlink", "exit", "spawn_link", "trap_exit", "sleep", "signal",
           "remote_link", "node_lost", "me"]

KILL, KILLED, NORMAL = "kill", "killed", "normal"


def me() -> Proc:
    """The calling process; ProcessExit if a signal killed it."""
    proc = getattr(_table.local, "proc", None) or _table.current()
    if proc.exit_reason is not None:
        _exited(proc)
    return proc


# ---------------------------------------------------------------- what a process asks

def link(pid: Pid) -> bool:
    """Elixir: ``Process.link(pid)``. Both processes now die together (unless one traps
    exits). A local pid that is not alive raises, as in Erlang; a trapping caller gets
    ``("EXIT", pid, "noproc")`` instead."""
    _pid_arg(pid, "link")
    caller = me()
    if pid == caller.pid:
        return True
    if not pid.is_local():
        caller.links.add(pid)
        _remote(pid.node, (LINK, caller.pid, pid), caller.pid)
        return True
    with _table.lock:
        other = _table.lookup(pid)
        if other is not None:
            other.links.add(caller.pid)
            caller.links.add(pid)
            return True
    if caller.trap_exit:
        caller.deliver(("EXIT", pid, "noproc"))
        return True
    raise PydistError(f"Process.link: {pid!r} is not alive (noproc); a process that "
                      f"traps exits gets ('EXIT', pid, 'noproc') instead")


def unlink(pid: Pid) -> bool:
    """Elixir: ``Process.unlink(pid)``. Removes the link, if there is one."""
    _pid_arg(pid, "unlink")
    caller = me()
    caller.links.discard(pid)
    if pid.is_local():
        other = _table.lookup(pid)
        if other is not None:
            other.links.discard(caller.pid)
    elif pid.node in getattr(_table.dist, "peers", ()):
        _remote(pid.node, (UNLINK, caller.pid, pid), None)
    return True


def exit(pid: Pid, reason) -> bool:
    """Elixir: ``Process.exit(pid, reason)``: an exit signal to ``pid``. ``"kill"``
    kills it whatever it does; ``"normal"`` does nothing to another process; any other
    reason kills a process that does not trap exits (one that does gets a message)."""
    _pid_arg(pid, "exit")
    caller = me()
    if pid.is_local():
        signal(pid, caller.pid, reason, link=False)
    else:
        _remote(pid.node, (EXIT, caller.pid, pid, reason, False), None)
    if caller.exit_reason is not None:        # it signalled itself, or a link came back
        _exited(caller)
    return True


def spawn_link(fun: Callable, *args, light: bool = False) -> Pid:
    """Elixir: ``spawn_link(fn -> ... end)``: spawn and link in one step, so the new
    process cannot end before the link is made. ``light``: as for ``spawn``."""
    if not callable(fun):
        raise TypeError(f"spawn_link takes a function and its arguments; {fun!r} is not "
                        f"callable")
    parent = me()
    proc = new_process(fun, args, parent.group_leader, light=light)
    proc.links.add(parent.pid)
    parent.links.add(proc.pid)
    start_process(proc)
    return proc.pid


def trap_exit(flag: bool) -> bool:
    """Elixir: ``Process.flag(:trap_exit, flag)``; returns the previous value."""
    if not isinstance(flag, bool):
        raise TypeError(f"Process.flag('trap_exit', ...) takes True or False, not {flag!r}")
    caller = me()
    old, caller.trap_exit = caller.trap_exit, flag
    return old


def sleep(seconds: float) -> None:
    """Elixir: ``Process.sleep(ms)``, in seconds here. Unlike ``time.sleep``, a process
    killed while it sleeps stops at once."""
    if not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"Process.sleep takes seconds (a number >= 0), not {seconds!r}")
    check_seconds("Process.sleep", seconds)
    caller = me()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        caller.sleep(left)                        # a message wakes it too: sleep on
        if caller.exit_reason is not None:
            _exited(caller)


# ---------------------------------------------------------------- signals arriving

def signal(target: Pid, sender: Pid, reason, link: bool) -> None:
    """An exit signal to the local process ``target``, from any thread (a process, a
    reader). A link's signal counts only while the link exists."""
    with _table.lock:
        proc = _table.lookup(target)
        if proc is None:
            return
        if link:
            if sender not in proc.links:
                return
            proc.links.discard(sender)
        if reason == KILL and not link:
            reason = KILLED
        elif proc.trap_exit:
            proc.deliver(("EXIT", sender, reason))
            return
        elif reason == NORMAL and sender != target:
            return
        proc.exit_reason = reason
    if _table.exit(proc, reason):
        _stop(proc)


def remote_link(peer, sender: Pid, target: Pid) -> None:
    """Another node's process linked to ``target`` (from a reader: never blocks)."""
    with _table.lock:
        proc = _table.lookup(target)
        if proc is not None:
            proc.links.add(sender)
            return
    _table.dist.send_signal(peer, (EXIT, target, sender, "noproc", True))


def node_lost(node: str) -> None:
    """Every link to a process of ``node`` gives its local end "noconnection"."""
    with _table.lock:
        cut = [(proc.pid, pid) for proc in _table.procs.values()
               for pid in proc.links if pid.node == node]
    for local, remote in cut:
        signal(local, remote, "noconnection", link=True)


# ---------------------------------------------------------------- how a process dies

def _stop(proc: Proc) -> None:
    """Stop the thread of ``proc``, which is dead already (see the module's docstring)."""
    proc.signal()                                 # waiting: it wakes and raises
    if proc.guard is None or proc.thread is threading.current_thread():
        return                                    # the caller raises (see exit())
    if proc.guard.acquire(False):                 # else it is sending: raises after
        try:
            if not proc.exiting and proc.thread.is_alive():
                _async_exc(proc.thread.ident, ProcessExit)
        finally:
            proc.guard.release()


_chain = threading.local()


def _linked_exit(pid: Pid, links: set, reason) -> None:
    """``pid`` ended with ``reason``: a signal to each process linked to it. A chain of
    links is walked with a queue, not by recursion (a chain can be long)."""
    todo = getattr(_chain, "todo", None)
    items = [(other, pid, reason) for other in links]
    if todo is not None:                          # inside a walk already: join it
        todo.extend(items)
        return
    _chain.todo = todo = deque(items)
    try:
        while todo:
            other, sender, why = todo.popleft()
            if other.is_local():
                signal(other, sender, why, link=True)
            elif _table.dist is not None:
                peer = _table.dist.peers.get(other.node)
                if peer is not None:
                    _table.dist.send_signal(peer, (EXIT, sender, other, why, True))
    finally:
        _chain.todo = None


_table.linked_exit = _linked_exit


# ---------------------------------------------------------------- helpers

def _remote(node: str, item: tuple, linker: Pid | None) -> None:
    """Send a LINK, UNLINK or EXIT to ``node``. A link to a node that cannot be reached
    ends at once with "noconnection", as in Erlang."""
    dist = _table.dist_required("Process.link" if item[0] == LINK else "Process.exit")
    peer = dist.peers.get(node) or dist.connect(node)
    if peer is not None:
        dist.send_signal(peer, item)
        if not peer.lost:
            return
    if linker is not None:
        signal(linker, item[2], "noconnection", link=True)


def _pid_arg(pid, what: str) -> None:
    if not isinstance(pid, Pid):
        raise TypeError(f"Process.{what} takes a pid (from spawn() or self()), not {pid!r}")
