"""Process groups across the cluster: Elixir's ``:pg``.

A scope is a process registered under the scope's name (``"pg"`` by default) on each
node that takes part; scopes of the same name find each other and keep, each, the
members of every group on every node. This node's scope is a pydist process that
speaks OTP 25's protocol (``pg.erl``), so a group can hold Python and Elixir
processes at once:

    Erlang (pg.erl)                        here
    {discover, Peer}   to {Scope, Node}    at start and at each nodeup; answered with
    {'$gen_cast', {sync, Peer, Groups}}    the members of this node
    {join, Peer, Group, PidOrPids}         a member more
    {leave, Peer, PidOrPids, Groups}       a member less
    monitor of each peer scope             its node or scope gone: its members go

    pg.join("chat", self())                :pg.join(:chat, self())
    pg.get_members("chat")                 :pg.get_members(:chat)

Group names that are strings are Elixir atoms (``"chat"`` is ``:chat``), as
everywhere in pydist. An Elixir node starts its default scope with
``:pg.start_link()`` (Elixir does not start it by itself).
"""

from __future__ import annotations

import threading

from . import _etf
from ._global import serve, take_name
from ._process import Pid, _table, receive, send, spawn_system
from ._registry import Process

__all__ = ["start", "join", "leave", "get_members", "get_local_members", "which_groups",
           "monitor_scope", "demonitor"]

Atom = _etf.Atom
DEFAULT_SCOPE = "pg"
CALL_TIMEOUT = 5.0


def _group(group):
    return Atom(group) if isinstance(group, str) else group


def _pids(pid_or_pids, what: str) -> list[Pid]:
    pids = pid_or_pids if isinstance(pid_or_pids, list) else [pid_or_pids]
    for pid in pids:
        if not isinstance(pid, Pid) or not pid.is_local():
            raise ValueError(f"pg.{what}: only local processes can join or leave (pg's "
                             f"nolocal), not {pid!r}; ask their node to do it")
    return pids


class _Scope:
    def __init__(self, dist, name: str):
        self.dist, self.name = dist, name
        self.lock = threading.Lock()
        self.local: dict[Pid, tuple] = {}        # pid -> (monitor ref, [groups])
        self.remote: dict[Pid, tuple] = {}       # peer scope -> (monitor ref, {g: [pids]})
        self.watchers: dict = {}                 # monitor_scope ref -> pid
        self.pid: Pid | None = None

    # ------------------------------------------------------------ views (any thread)
    def members(self, group, local_only: bool = False) -> list[Pid]:
        with self.lock:
            out = [pid for pid, (_r, groups) in self.local.items()
                   for g in groups if g == group]
            if not local_only:
                for _r, groups in self.remote.values():
                    out += groups.get(group, [])
        return out

    def groups(self) -> dict:
        with self.lock:
            found: dict = {}
            for pid, (_r, groups) in self.local.items():
                for g in groups:
                    found.setdefault(g, []).append(pid)
            for _r, groups in self.remote.values():
                for g, pids in groups.items():
                    if pids:
                        found.setdefault(g, []).extend(pids)
        return found

    # ------------------------------------------------------------ protocol
    def _local_groups(self) -> list:
        by_group: dict = {}
        for pid, (_r, groups) in self.local.items():
            for g in groups:
                by_group.setdefault(g, []).append(pid)
        return list(by_group.items())

    def _broadcast(self, msg) -> None:
        for peer in list(self.remote):
            send(peer, msg)

    def _tell(self, kind: str, group, pids: list) -> None:
        for ref, pid in list(self.watchers.items()):
            send(pid, (ref, kind, group, pids))

    def discover(self, node: str) -> None:
        send((self.name, node), (Atom("discover"), self.pid))

    def discovered(self, peer: Pid) -> None:
        send(peer, (Atom("$gen_cast"), (Atom("sync"), self.pid, self._local_groups())))
        if peer not in self.remote:
            ref = Process.monitor(peer)
            with self.lock:
                self.remote[peer] = (ref, {})
            send(peer, (Atom("discover"), self.pid))

    def sync(self, peer: Pid, groups) -> None:
        with self.lock:
            ref, old = self.remote.get(peer, (None, {}))
        if ref is None:
            ref = Process.monitor(peer)
        new = {g: list(pids) for g, pids in groups}
        with self.lock:
            self.remote[peer] = (ref, new)
        for g in set(old) | set(new):
            gone = [p for p in old.get(g, []) if p not in new.get(g, [])]
            came = [p for p in new.get(g, []) if p not in old.get(g, [])]
            if came:
                self._tell("join", g, came)
            if gone:
                self._tell("leave", g, gone)

    def remote_join(self, peer: Pid, group, pids) -> None:
        pids = pids if isinstance(pids, list) else [pids]
        with self.lock:
            if peer not in self.remote:
                return                           # a node outside the overlay: ignored
            self.remote[peer][1].setdefault(group, []).extend(pids)
        self._tell("join", group, pids)

    def remote_leave(self, peer: Pid, pids, groups) -> None:
        pids = pids if isinstance(pids, list) else [pids]
        with self.lock:
            if peer not in self.remote:
                return
            mine = self.remote[peer][1]
            for g in groups:
                left = list(mine.get(g, []))
                for pid in pids:
                    if pid in left:
                        left.remove(pid)
                mine[g] = left
        for g in groups:
            self._tell("leave", g, pids)

    def join(self, group, pids: list[Pid]) -> None:
        for pid in pids:
            with self.lock:
                entry = self.local.get(pid)
            if entry is None:
                entry = (Process.monitor(pid), [])
            with self.lock:
                self.local[pid] = (entry[0], entry[1] + [group])
        self._broadcast((Atom("join"), self.pid, group, pids if len(pids) > 1 else pids[0]))
        self._tell("join", group, pids)

    def leave(self, group, pids: list[Pid]) -> str:
        left = []
        with self.lock:
            for pid in pids:
                entry = self.local.get(pid)
                if entry is not None and group in entry[1]:
                    groups = list(entry[1])
                    groups.remove(group)
                    self.local[pid] = (entry[0], groups)
                    left.append(pid)
        if not left:
            return "not_joined"
        self._broadcast((Atom("leave"), self.pid, left if len(left) > 1 else left[0],
                         [group]))
        self._tell("leave", group, left)
        return "ok"

    def down(self, ref, pid) -> None:
        with self.lock:
            entry = self.local.get(pid)
            if entry is not None and entry[0] == ref:
                del self.local[pid]
            peer = self.remote.get(pid)
            if peer is not None and peer[0] == ref:
                del self.remote[pid]
        if entry is not None and entry[0] == ref:
            groups = sorted(set(entry[1]), key=repr)
            if groups:
                self._broadcast((Atom("leave"), self.pid, pid, groups))
            for g in groups:
                self._tell("leave", g, [pid])
        elif peer is not None and peer[0] == ref:
            for g, pids in peer[1].items():
                if pids:
                    self._tell("leave", g, pids)
        else:
            self.watchers = {r: p for r, p in self.watchers.items() if p != pid}


def _serve(scope: _Scope, ready: threading.Event) -> None:
    scope.pid = (getattr(_table.local, "proc", None) or _table.current()).pid
    take_name(scope.pid, scope.name)
    ready.set()
    for node in list(scope.dist.peers):
        scope.discover(node)
    serve(scope.dist, lambda msg: _handle(scope, msg), f"pg scope {scope.name}")


def _handle(scope: _Scope, msg) -> None:
    if type(msg) is not tuple or not msg:
        return
    kind = msg[0]
    if kind == "discover" and len(msg) == 2 and isinstance(msg[1], Pid):
        scope.discovered(msg[1])
    elif kind == "$gen_cast" and type(msg[1]) is tuple and msg[1][:1] == ("sync",):
        scope.sync(msg[1][1], msg[1][2])
    elif kind == "join" and len(msg) == 4:
        scope.remote_join(msg[1], msg[2], msg[3])
    elif kind == "leave" and len(msg) == 4:
        scope.remote_leave(msg[1], msg[2], msg[3])
    elif kind == "DOWN" and len(msg) == 5:
        scope.down(msg[1], msg[3])
    elif kind == "nodeup":
        scope.discover(msg[1])
    elif kind == "api":                          # ("api", caller, ref, op, *args)
        _, caller, ref, op, *args = msg
        if op == "join":
            value = scope.join(*args)
        elif op == "leave":
            value = scope.leave(*args)
        elif op == "monitor":
            value = (ref, scope.groups())
            scope.watchers[ref] = caller
            Process.monitor(caller)
        else:                                    # "demonitor"
            value = scope.watchers.pop(args[0], None) is not None
        send(caller, ("pg_answer", ref, value))


_scopes: dict[str, _Scope] = {}
_start_lock = threading.Lock()


def start(scope: str = DEFAULT_SCOPE) -> Pid:
    """Elixir: ``:pg.start_link(scope)``: this node's process of ``scope`` (started
    once; every other call of this module starts it too)."""
    return _scope(scope).pid


def _scope(name: str) -> _Scope:
    if not isinstance(name, str) or not name:
        raise TypeError(f"pg: a scope is a name like 'pg' or 'chat_scope', not {name!r}")
    dist = _table.dist_required("pg")
    with _start_lock:
        scope = _scopes.get(name)
        if scope is None or scope.dist is not dist:
            if scope is not None and scope.pid is not None:
                send(scope.pid, ("stop",))
            scope = _scopes[name] = _Scope(dist, name)
            ready = threading.Event()
            spawn_system(_serve, scope, ready)
            if not ready.wait(CALL_TIMEOUT):
                raise TimeoutError(f"pg: the scope {name!r} did not start")
    return scope


def nodeup(dist, node: str) -> None:
    """From _dist: each scope here discovers the scope of the same name there."""
    for scope in list(_scopes.values()):
        if scope.dist is dist and scope.pid is not None:
            send(scope.pid, ("nodeup", node))       # a pid: never raises


def _api(scope: str, op: str, *args):
    target = _scope(scope)
    me = (getattr(_table.local, "proc", None) or _table.current()).pid
    ref = _table.make_ref()
    send(target.pid, ("api", me, ref, op, *args))
    return receive(timeout=CALL_TIMEOUT, match=lambda m: type(m) is tuple and len(m) == 3
                   and m[0] == "pg_answer" and m[1] == ref)[2]


def join(group, pid_or_pids, scope: str = DEFAULT_SCOPE) -> str:
    """Elixir: ``:pg.join(:group, pid_or_pids)``: ``"ok"``. A pid may join a group
    more than once (it then leaves once per join)."""
    _api(scope, "join", _group(group), _pids(pid_or_pids, "join"))
    return "ok"


def leave(group, pid_or_pids, scope: str = DEFAULT_SCOPE) -> str:
    """Elixir: ``:pg.leave(:group, pid_or_pids)``: ``"ok"`` or ``"not_joined"``."""
    return _api(scope, "leave", _group(group), _pids(pid_or_pids, "leave"))


def get_members(group, scope: str = DEFAULT_SCOPE) -> list[Pid]:
    """Elixir: ``:pg.get_members(:group)``: its members on every node."""
    return _scope(scope).members(_group(group))


def get_local_members(group, scope: str = DEFAULT_SCOPE) -> list[Pid]:
    """Elixir: ``:pg.get_local_members(:group)``."""
    return _scope(scope).members(_group(group), local_only=True)


def which_groups(scope: str = DEFAULT_SCOPE) -> list:
    """Elixir: ``:pg.which_groups()``: the groups with members anywhere."""
    return sorted(_scope(scope).groups(), key=repr)


def monitor_scope(scope: str = DEFAULT_SCOPE):
    """Elixir: ``:pg.monitor_scope()``: ``(ref, {group: members})``; later the caller
    gets ``(ref, "join", group, pids)`` and ``(ref, "leave", group, pids)``."""
    return _api(scope, "monitor")


def demonitor(ref, scope: str = DEFAULT_SCOPE) -> bool:
    """Elixir: ``:pg.demonitor(ref)``."""
    return _api(scope, "demonitor", ref)
