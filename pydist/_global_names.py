"""Global names, the table: what one node holds of ``:global``'s names, and how a clash
is settled when two nodes' tables meet.

Elixir's twin is the ``global_names`` table of kernel's ``global.erl`` and its
``exchange_names``/``resolve_it``: every node holds every name, each with the
process that has it and the method that settles a clash (by default
``&:global.random_exit_name/3``: one of the two processes keeps the name, the other
is killed). A name goes when its process dies, wherever that process ran.

    :global.whereis_name(:svc)            table.names[Atom("svc")][0]
    a clash as two clusters meet          exchange_ops: the node with the smaller
                                          name settles it, with the holder's method

The protocol that fills the table from other nodes is in ``_global_sync``; the
public ``Global`` is in ``_global``.
"""

from __future__ import annotations

from . import _etf
from ._process import _table
from ._registry import Process

Atom = _etf.Atom
CALL_TIMEOUT = 5.0                          # a node that does not answer: given up
# `fun global:random_exit_name/3` (EXPORT_EXT), the default conflict method.
DEFAULT_METHOD = _etf.Opaque("export", bytes([113, 119, 6]) + b"global" + bytes([119, 16])
                             + b"random_exit_name" + bytes([97, 3]))


class NameTable:
    """name -> (pid, method, monitor ref): one per node, kept by its name server only
    (other threads only read it: a dict read is atomic)."""

    def __init__(self):
        self.names: dict = {}

    def holder(self, name):
        entry = self.names.get(name)
        return entry[0] if entry is not None else None

    def taken(self, name, pid) -> bool:
        """register_name's refusal: the name is held, or the pid has a name already."""
        return name in self.names or any(p == pid for p, _m, _r in self.names.values())

    def as_list(self) -> list:
        """The names as global's exchange message carries them: [{Name, Pid, Method}]."""
        return [(name, pid, method) for name, (pid, method, _r) in self.names.items()]

    def insert(self, name, pid, method) -> None:
        # A monitor per name, as global's: when the process dies, its name goes.
        if name in self.names:
            self.delete(name)
        self.names[name] = (pid, method, Process.monitor(pid))

    def delete(self, name) -> None:
        entry = self.names.pop(name, None)
        if entry is not None:
            Process.demonitor(entry[2])

    def do_ops(self, ops) -> None:
        """[{insert, {Name, Pid, Method}} | {delete, Name}], as resolved/new_nodes carry."""
        for op in ops:
            if op[0] == "insert":
                self.insert(*op[1])
            elif op[0] == "delete":
                self.delete(op[1])

    def down(self, ref) -> None:
        """A monitored process died: each name it had goes."""
        for name, entry in list(self.names.items()):
            if entry[2] == ref:
                del self.names[name]

    def node_gone(self, node: str) -> None:
        """A node is down: the names of its processes go (its monitors fire too, but a
        table that waits for them would answer with dead pids meanwhile)."""
        for name, (pid, _m, _ref) in list(self.names.items()):
            if pid.node == node:
                self.delete(name)

    def answer(self, request):
        """A peer's gen_server:call about names: {register, Name, Pid, Method} (it
        registered one), {unregister, Name}, and its {set_lock, _} / {del_lock, _} around
        them, which a table with a single writer grants at once."""
        if type(request) is not tuple or not request:
            return Atom("ok")
        if request[0] == "register" and len(request) == 4:
            self.insert(request[1], request[2], request[3])
            return Atom("yes")
        if request[0] == "unregister" and len(request) == 2:
            self.delete(request[1])
            return Atom("ok")
        if request[0] in ("set_lock", "del_lock"):
            return True
        return Atom("ok")

    def exchange_ops(self, me: str, node: str, his_names: list) -> tuple[list, list]:
        """global's exchange_names: ``(ops, res)``, what we do with the names ``node``
        has and what he must do. A name we lack is inserted here; a name held by
        another process is settled by the node whose name is smaller (both apply the
        same answer: ``res`` goes back to him in the resolved message)."""
        ops, res = [], []
        for name, pid, method in his_names:
            mine = self.names.get(name)
            if mine is None:
                ops.append((Atom("insert"), (name, pid, method)))
            elif mine[0] != pid and me < node:
                keep = conflict(name, pid, mine[0], mine[1])
                if keep == pid:
                    ops.append((Atom("insert"), (name, pid, method)))
                elif keep == mine[0]:
                    res.append((Atom("insert"), (name, mine[0], mine[1])))
                else:                              # the method chose neither
                    ops.append((Atom("delete"), name))
                    res.append((Atom("delete"), name))
        return ops, res


def conflict(name, pid, pid2, method2):
    """global's resolve_it, run where the holder lives when that is a BEAM node (the
    method is an Erlang fun); otherwise (a pydist holder) random_exit_name's choice:
    the smaller pid stays."""
    # rpc sits above this layer: imported when a clash needs it
    from . import rpc
    from ._errors import BadRpc
    node = pid2.node
    peer = _table.dist.peers.get(node)
    if peer is not None and peer.beam is not None:
        try:
            return rpc.call(node, "global", "resolve_it", [method2, name, pid, pid2],
                            timeout=CALL_TIMEOUT)
        except BadRpc:
            return pid
    return min(pid, pid2, key=lambda p: (p.node, p.num))
