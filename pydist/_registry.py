"""Elixir's ``Process`` module: the registry, mailbox inspection, monitors and
group leaders, over the process table of ``_process``."""

from __future__ import annotations

from . import _signals
from ._process import USER, Pid, Ref, _table, self

__all__ = ["Process", "add_watcher"]


class Process:
    """Elixir's ``Process`` module: the registry, mailbox inspection and monitors."""

    @staticmethod
    def register(pid: Pid, name: str) -> bool:
        """Elixir: ``Process.register(pid, :name)``. Returns ``True``."""
        if not isinstance(pid, Pid):
            raise TypeError(f"Process.register takes a pid and a name, not {pid!r}")
        if not isinstance(name, str) or not name:
            raise TypeError(f"Process.register: the name must be a non-empty string, "
                            f"not {name!r} (Elixir atoms are strings here)")
        if not pid.is_local():
            raise ValueError(f"Process.register: {pid!r} lives on {pid.node}; "
                             f"only local processes can be registered here")
        with _table.lock:
            proc = _table.lookup(pid)
            if proc is None:
                raise ValueError(f"Process.register: {pid!r} is not alive")
            holder = _table.names.get(name)
            if holder is not None and holder.alive:
                raise ValueError(f"Process.register: the name {name!r} is already taken "
                                 f"by {holder.pid!r}; Process.unregister({name!r}) first")
            if proc.name is not None:
                raise ValueError(f"Process.register: {pid!r} is already registered as "
                                 f"{proc.name!r}")
            proc.name = name
            _table.names[name] = proc
        return True

    @staticmethod
    def unregister(name: str) -> bool:
        """Elixir: ``Process.unregister(:name)``."""
        _name_arg(name, "unregister")
        with _table.lock:
            proc = _table.names.pop(name, None)
            if proc is None:
                raise ValueError(f"Process.unregister: no process is registered as {name!r}")
            proc.name = None
        return True

    @staticmethod
    def whereis(name: str) -> Pid | None:
        """Elixir: ``Process.whereis(:name)``; ``None`` when nobody has that name.
        ``"user"`` is this node's console (give it to ``Process.group_leader``)."""
        _name_arg(name, "whereis")
        if name == "user":
            return Pid(None, USER)
        proc = _table.names.get(name)
        return proc.pid if proc is not None and proc.alive else None

    @staticmethod
    def registered() -> list[str]:
        """Elixir: ``Process.registered()``: the names registered on this node."""
        return sorted(name for name, proc in list(_table.names.items()) if proc.alive)

    @staticmethod
    def group_leader(pid: Pid | None = None, leader: Pid | None = None) -> Pid:
        """Elixir: ``Process.group_leader()`` / ``Process.group_leader(pid, leader)``.

        The group leader is where a process's output goes. A process started by
        ``rpc.call`` or ``Node.spawn`` has the caller as leader, so it prints on the
        caller's side; ``Process.group_leader(self(), Process.whereis("user"))``
        makes it print on its own node's console instead."""
        if pid is None:
            leader_now = _table.current().group_leader
            return Pid(None, USER) if leader_now is None else leader_now
        proc = _table.lookup(_local_pid(pid, "group_leader"))
        if not isinstance(leader, Pid):
            raise TypeError(f"Process.group_leader(pid, leader): leader is a pid, e.g. "
                            f"Process.whereis('user'), not {leader!r}")
        if proc is not None:
            proc.group_leader = None if leader == Pid(None, USER) else leader
        return leader

    @staticmethod
    def alive(pid: Pid) -> bool:
        """Elixir: ``Process.alive?(pid)`` (local pids only)."""
        return _table.lookup(_local_pid(pid, "alive")) is not None

    @staticmethod
    def info(pid: Pid, item: str | None = None):
        """Elixir: ``Process.info(pid, :messages)`` -> ``("messages", [...])``.

        ``item`` is ``"messages"``, ``"message_queue_len"`` or ``"registered_name"``;
        without it, a dict of all three. ``None`` if the process is dead.
        """
        proc = _table.lookup(_local_pid(pid, "info"))
        if proc is None:
            return None
        messages = proc.messages()
        facts = {"messages": messages, "message_queue_len": len(messages),
                 "registered_name": proc.name}
        if item is None:
            return facts
        if item not in facts:
            raise ValueError(f"Process.info: unknown item {item!r}; use one of {list(facts)}")
        return (item, facts[item])

    @staticmethod
    def monitor(target) -> Ref:
        """Elixir: ``Process.monitor(pid)``. Returns a ref; the caller later gets
        ``("DOWN", ref, "process", target, reason)``: reason ``"normal"``, the
        exception that killed it, ``"noproc"`` (it was not alive) or
        ``"noconnection"`` (its node was lost). ``target`` may also be a local name
        or a ``(name, node)`` pair."""
        watcher = self()
        ref = _table.make_ref()
        if isinstance(target, str):           # DOWN names it as Erlang does: {name, node}
            target = (target, _table.name)
        pair = (isinstance(target, tuple) and len(target) == 2
                and all(isinstance(part, str) for part in target))
        if not (pair or isinstance(target, Pid)):
            raise TypeError(f"Process.monitor takes a pid, a name or (name, node), "
                            f"not {target!r}")
        node = target[1] if pair else target.node
        if node == _table.name:
            add_watcher(ref, watcher, target)
        else:
            _table.dist_required("Process.monitor").monitor_remote(ref, watcher, target)
        return ref

    @staticmethod
    def demonitor(ref: Ref, flush: bool = False) -> bool:
        """Elixir: ``Process.demonitor(ref)``; ``flush=True`` (Elixir: ``[:flush]``)
        also removes a DOWN of this monitor already in the mailbox."""
        if not isinstance(ref, Ref):
            raise TypeError(f"Process.demonitor takes the reference Process.monitor "
                            f"returned, not {ref!r}")
        with _table.lock:
            for proc in _table.procs.values():
                proc.watchers.pop(ref, None)
        if _table.dist is not None:
            _table.dist.demonitor(ref)
        if flush:
            _table.current().remove(lambda m: type(m) is tuple and len(m) == 5
                                    and m[0] == "DOWN" and m[1] == ref)
        return True

    # -- links and exit signals (_signals)
    link = staticmethod(_signals.link)
    unlink = staticmethod(_signals.unlink)
    exit = staticmethod(_signals.exit)
    sleep = staticmethod(_signals.sleep)

    @staticmethod
    def flag(name: str, value):
        """Elixir: ``Process.flag(:trap_exit, true)``; returns the previous value.
        Only ``"trap_exit"`` is known here."""
        if name != "trap_exit":
            raise ValueError(f"Process.flag: only 'trap_exit' is supported, not {name!r}")
        return _signals.trap_exit(value)


def add_watcher(ref: Ref, watcher: Pid, target, notify: bool = True) -> bool:
    """Monitor a local ``target`` (pid or (name, this node)) for ``watcher``. If it is
    gone already: False, and ``watcher`` is told at once (DOWN noproc) unless the
    caller, a reader that must not write, does that itself (``notify=False``)."""
    with _table.lock:
        proc = (_table.lookup(target) if isinstance(target, Pid)
                else _table.names.get(target[0]))
        if proc is not None and proc.alive:
            proc.watchers[ref] = (watcher, target)
            return True
    if notify:
        _table.down(watcher, ref, target, "noproc")
    return False


def _name_arg(name, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"Process.{what} takes a registered name, a non-empty string like "
                        f"'product_stock' (Elixir atoms are strings here), not {name!r}")


def _local_pid(pid, what: str) -> Pid:
    if not isinstance(pid, Pid):
        raise TypeError(f"Process.{what} takes a pid, not {pid!r}")
    if not pid.is_local():
        raise ValueError(f"Process.{what}: {pid!r} lives on {pid.node}; ask that node, "
                         f"e.g. rpc.call({pid.node!r}, ...)")
    return pid
