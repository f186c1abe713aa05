"""Global names: one name table for the whole cluster, BEAM nodes included.

Elixir's twin is ``:global`` (kernel's ``global.erl``): a process registered as
``global_name_server`` on every node, that syncs its table with each node it meets
and is told of every registration. This node runs one too, a pydist process that
speaks the same protocol (version 8) with its BEAM twins and, pickled, with other
pydist nodes: so ``:global.sync()`` on an Elixir node returns, names registered there
are seen here and the other way round, and this node is a full member of the mesh.

    Erlang (at a nodeup, each side)                  here
    {init_connect, {8, Tag}, Node, {locker, _, _, L}} the same, our pid as locker
    {lock_set, L, true, Known, HisTag}                sent at once (we lock nothing
                                                      ourselves: see _lock_set)
    {exchange, Node, Names, [], HisTag}               our names
    {resolved, Node, Ops, Known, unused, [], HisTag}  conflicts, as exchange_names
    {new_nodes, Node, Ops, [], Nodes, Extra}          to the nodes we knew
    {register, Name, Pid, Method} ($gen_call)         a name from a registration
    {lost_connection, A, _, _, B}                     B disconnected: overlapping
                                                      partitions are prevented
"""

from __future__ import annotations

import itertools
import threading

from . import _etf
from ._process import Pid, _table, receive, send, spawn_system
from ._registry import Process

__all__ = ["Global", "nodeup", "nodedown"]

Atom = _etf.Atom
VSN = 8                                     # global's ?vsn in OTP 25
NAME = "global_name_server"
CALL_TIMEOUT = 5.0                          # a gns that does not answer: given up
# `fun global:random_exit_name/3` (EXPORT_EXT), the default conflict method.
DEFAULT_METHOD = _etf.Opaque("export", bytes([113, 119, 6]) + b"global" + bytes([119, 16])
                             + b"random_exit_name" + bytes([97, 3]))
_tags = itertools.count(1)


def _to(node: str, msg) -> None:
    """A message to global_name_server at ``node``, only if connected: global's sends
    never set up a connection (gns_volatile_send's noconnect), or a node dropped to
    end a partition would be joined again at once."""
    dist = _table.dist
    if dist is not None and str(node) in dist.peers:
        send((NAME, str(node)), msg)


def _cast(node: str, msg) -> None:
    _to(node, (Atom("$gen_cast"), msg))


class _Server:
    """The state of this node's global_name_server (one per running node)."""

    def __init__(self, dist):
        self.dist, self.me = dist, Atom(dist.name)
        self.names: dict = {}                 # name -> (pid, method, monitor ref)
        self.known: set[str] = set()          # nodes synced with us
        self.my_tag: dict[str, int] = {}
        self.his_tag: dict[str, int] = {}
        self.sent_lock: set[str] = set()
        self.locked: set[str] = set()
        self.his_names: dict[str, list] = {}
        self.my_ops: dict[str, list] = {}
        self.his_resolved: dict[str, tuple] = {}
        self.exchanged: set[str] = set()
        self.seen_lost: set = set()
        self.waiters: list = []               # (pid, ref) waiting for sync
        self.pid: Pid | None = None
        self.deferred: list = []              # registrations waiting for a sync to end

    # ------------------------------------------------------------ sessions
    def nodeup(self, node: str) -> None:
        if node in self.my_tag or node in self.known:
            return
        self.my_tag[node] = next(_tags)
        _cast(node, (Atom("init_connect"), (VSN, self.my_tag[node]), self.me,
                     (Atom("locker"), Atom("no_longer_a_pid"), [], _me())))

    def nodedown(self, node: str) -> None:
        for d in (self.my_tag, self.his_tag, self.his_names, self.my_ops,
                  self.his_resolved):
            d.pop(node, None)
        for s in (self.sent_lock, self.locked, self.exchanged, self.known):
            s.discard(node)
        for name, (pid, _m, _ref) in list(self.names.items()):
            if pid.node == node:
                self._delete(name)
        self._check_waiters()

    def init_connect(self, vsn, node, init) -> None:
        node = str(node)
        if self.his_tag.get(node, vsn[1]) != vsn[1]:     # he started over: so do we
            self._reset(node)
            self.my_tag.pop(node, None)
        self.his_tag[node] = vsn[1]
        if node not in self.my_tag:
            self.nodeup(node)
        _to(node, (Atom("init_connect_ack"), self.me, vsn[1], self.my_tag[node]))
        self._lock_set(node)

    def _reset(self, node: str) -> None:
        for state in (self.his_names, self.my_ops, self.his_resolved):
            state.pop(node, None)
        for state in (self.sent_lock, self.locked, self.exchanged):
            state.discard(node)

    def cancel_connect(self, node: str, tag) -> None:
        """{cancel_connect, Node, Tag}: his side gave up this session; it starts again
        with a new init_connect, which we answer with a new one of ours."""
        if tag == self.my_tag.get(node):
            self._reset(node)
            self.my_tag.pop(node, None)
            self.his_tag.pop(node, None)
            self._check_waiters()

    def _lock_set(self, node: str) -> None:
        # Erlang's lockers lock both partitions before the exchange. Ours takes no lock
        # of its own: it agrees at once, and the BEAM locker locks its side.
        if node not in self.sent_lock and node in self.his_tag:
            self.sent_lock.add(node)
            _cast(node, (Atom("lock_set"), _me(), True, self._known_list(),
                         self.his_tag[node]))

    def lock_set(self, pid, is_set, tag) -> None:
        node = pid.node
        if tag != self.my_tag.get(node):
            return
        if not is_set:                         # refused: ask again
            self.sent_lock.discard(node)
            threading.Timer(0.1, send, ((NAME, self.dist.name),
                                        ("retry_lock", node))).start()
            return
        self._lock_set(node)
        if node in self.locked:
            return
        self.locked.add(node)
        names = [(name, pid, method) for name, (pid, method, _r) in self.names.items()]
        _cast(node, (Atom("exchange"), self.me, names, [], self.his_tag[node]))
        self._resolve(node)

    def exchange(self, node, names, tag) -> None:
        node = str(node)
        if tag == self.my_tag.get(node):
            self.his_names[node] = names
            self._resolve(node)

    def _resolve(self, node: str) -> None:
        """exchange_names: the names he has that we lack or hold otherwise."""
        if node not in self.locked or node not in self.his_names or node in self.exchanged:
            return
        self.exchanged.add(node)
        ops, res = [], []
        for name, pid, method in self.his_names.pop(node):
            mine = self.names.get(name)
            if mine is None:
                ops.append((Atom("insert"), (name, pid, method)))
            elif mine[0] != pid and self.me < node:       # we settle the clash
                keep = _conflict(name, pid, mine[0], mine[1])
                if keep == pid:
                    ops.append((Atom("insert"), (name, pid, method)))
                elif keep == mine[0]:
                    res.append((Atom("insert"), (name, mine[0], mine[1])))
                else:
                    ops.append((Atom("delete"), name))
                    res.append((Atom("delete"), name))
        self.my_ops[node] = ops
        _cast(node, (Atom("resolved"), self.me, res, self._known_list(), Atom("unused"), [],
                     self.his_tag[node]))
        self._resolved(node)

    def resolved(self, node, his_ops, his_known, tag) -> None:
        node = str(node)
        if tag == self.my_tag.get(node):
            self.his_resolved[node] = (his_ops, his_known)
            self._resolved(node)

    def _resolved(self, node: str) -> None:
        if node not in self.my_ops or node not in self.his_resolved:
            return
        his_ops, his_known = self.his_resolved.pop(node)
        ops = self.my_ops.pop(node) + list(his_ops)
        new = [node] + [str(k[0] if type(k) is tuple else k) for k in his_known]
        extra = [(Atom("vsn"), VSN), (Atom("lock"), (Atom("global"), []))]
        for other in self.known:
            if other != node:                  # our side hears of his side
                _cast(other, (Atom("new_nodes"), self.me, ops, [],
                              [(Atom(n), VSN) for n in new], extra))
        self._do_ops(ops)
        for state in (self.my_tag, self.his_tag):
            state.pop(node, None)
        for state in (self.sent_lock, self.locked, self.exchanged):
            state.discard(node)
        self.known.add(node)
        self._meet(new[1:])
        self._check_waiters()

    def new_nodes(self, ops, nodes) -> None:
        self._do_ops(ops)
        self._meet([str(k[0] if type(k) is tuple else k) for k in nodes])

    def _meet(self, nodes: list[str]) -> None:
        """sync_others: connect to each node the other side knows (the mesh)."""
        for node in nodes:
            if node != self.dist.name and node not in self.dist.peers:
                threading.Thread(target=self._connect_then_tell, args=(node,),
                                 daemon=True).start()
            elif node in self.dist.peers:
                _cast(node, (Atom("in_sync"), self.me, True))

    def _connect_then_tell(self, node: str) -> None:
        if self.dist.connect(node) is not None:
            _cast(node, (Atom("in_sync"), self.me, True))

    def in_sync(self, node) -> None:
        node = str(node)
        self.known.add(node)
        self._check_waiters()

    def lost_connection(self, msg) -> None:
        """Another node lost ``b``: so do we (OTP 25's prevent_overlapping_partitions)."""
        _, a, _creation, op_id, b = msg
        key = (str(a), str(b), op_id)
        if key in self.seen_lost:
            return
        self.seen_lost.add(key)
        for other in list(self.known):
            if other not in (str(a), str(b)):
                _to(other, msg)
        gone = str(a) if str(b) == self.dist.name else str(b)
        peer = self.dist.peers.get(gone)
        if peer is not None and gone in self.known:
            self.dist.log(f"'global' disconnected {gone} to prevent overlapping partitions "
                          f"({a} lost it)")
            _to(gone, (Atom("remove_connection"), self.me))
            peer.channel.shutdown()

    # ------------------------------------------------------------ names
    def insert(self, name, pid, method) -> None:
        if name in self.names:
            self._delete(name)
        ref = Process.monitor(pid)
        self.names[name] = (pid, method, ref)

    def _delete(self, name) -> None:
        entry = self.names.pop(name, None)
        if entry is not None:
            Process.demonitor(entry[2])

    def _do_ops(self, ops) -> None:
        for op in ops:
            if op[0] == "insert":
                self.insert(*op[1])
            elif op[0] == "delete":
                self._delete(op[1])

    def down(self, ref) -> None:
        for name, entry in list(self.names.items()):
            if entry[2] == ref:
                del self.names[name]

    def register(self, name, pid) -> str:
        """global:register_name: on every known node, under a lock on all of them."""
        if name in self.names or any(p == pid for p, _m, _r in self.names.values()):
            return "no"
        nodes = sorted(self.known & set(self.dist.peers))
        lock = (Atom("global"), _me())
        _multi_call(nodes, (Atom("set_lock"), lock))
        try:
            _multi_call(nodes, (Atom("register"), name, pid, DEFAULT_METHOD))
            self.insert(name, pid, DEFAULT_METHOD)
        finally:
            _multi_call(nodes, (Atom("del_lock"), lock))
        return "yes"

    def unregister(self, name) -> None:
        nodes = sorted(self.known & set(self.dist.peers))
        _multi_call(nodes, (Atom("unregister"), name))
        self._delete(name)

    # ------------------------------------------------------------ sync
    def _known_list(self) -> list:
        return [(Atom(n), VSN) for n in sorted(self.known) if n in self.dist.peers]

    def synced(self) -> bool:
        return all(n in self.known for n in self.dist.peers)

    def _check_waiters(self) -> None:
        while self.deferred and not self.my_tag:
            _handle(self, self.deferred.pop(0))
        if self.synced():
            for pid, ref in self.waiters:
                send(pid, ("global_answer", ref, True))
            self.waiters = []


def _conflict(name, pid, pid2, method2):
    """global's resolve_it, run where the holder lives when that is a BEAM node;
    otherwise (a pydist holder) random_exit_name's choice: the smaller pid stays."""
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


def _multi_call(nodes: list[str], request) -> None:
    """gen_server:multi_call(Nodes, global_name_server, Request), answers ignored."""
    me, refs = _me(), {}
    for node in nodes:
        ref = _table.make_ref()
        refs[ref] = node
        _to(node, (Atom("$gen_call"), (me, ref), request))
    for ref in list(refs):
        try:
            receive(timeout=CALL_TIMEOUT, match=lambda m, r=ref: type(m) is tuple
                    and len(m) == 2 and m[0] == r)
        except TimeoutError:
            pass


def _me() -> Pid:
    return (getattr(_table.local, "proc", None) or _table.current()).pid


# ---------------------------------------------------------------- the process

def _serve(server: _Server) -> None:
    while True:
        msg = receive()
        if server.dist is not _table.dist or msg == ("stop",):     # the node stopped
            return
        try:
            _handle(server, msg)
        except Exception as exc:               # noqa: BLE001 - a bad message is dropped
            server.dist.log(f"global_name_server dropped {str(msg)[:200]}: {exc!r}")


def _handle(server: _Server, msg) -> None:
    if type(msg) is not tuple or not msg:
        return
    kind = msg[0]
    if kind == "$gen_cast" and len(msg) == 2 and type(msg[1]) is tuple and msg[1]:
        cast = msg[1]
        op = cast[0]
        if op == "init_connect":
            server.init_connect(cast[1], cast[2], cast[3])
        elif op == "lock_set":
            server.lock_set(cast[1], cast[2], cast[4] if len(cast) > 4 else None)
        elif op == "exchange":
            server.exchange(cast[1], cast[2], cast[4])
        elif op == "resolved":
            server.resolved(cast[1], cast[2], cast[3], cast[6])
        elif op == "new_nodes":
            server.new_nodes(cast[2], cast[4])
        elif op == "in_sync":
            server.in_sync(cast[1])
    elif kind == "$gen_call" and len(msg) == 3:
        (frm, tag), request = msg[1], msg[2]
        send(frm, (tag, _answer(server, request)))
    elif kind == "nodeup":
        server.nodeup(msg[1])
    elif kind == "nodedown":
        server.nodedown(msg[1])
    elif kind == "DOWN":
        server.down(msg[1])
    elif kind == "lost_connection" and len(msg) == 5:
        server.lost_connection(msg)
    elif kind == "remove_connection" and len(msg) == 2:
        peer = server.dist.peers.get(str(msg[1]))
        if peer is not None:
            peer.channel.shutdown()
    elif kind == "cancel_connect" and len(msg) == 3:
        server.cancel_connect(str(msg[1]), msg[2])
    elif kind == "retry_lock":
        server._lock_set(msg[1])
    elif kind == "api":                         # ("api", caller, ref, what, *args)
        _, caller, ref, what, *args = msg
        if what != "sync" and server.my_tag:   # a sync under way: after it, as global's
            server.deferred.append(msg)         # lock would make it wait
            return
        if what == "register":
            value = server.register(*args)
        elif what == "unregister":
            value = server.unregister(*args)
        else:                                   # "sync"
            if not server.synced():
                server.waiters.append((caller, ref))
                return
            value = True
        send(caller, ("global_answer", ref, value))


def _answer(server: _Server, request):
    if type(request) is not tuple or not request:
        return Atom("ok")
    op = request[0]
    if op == "register" and len(request) == 4:
        server.insert(request[1], request[2], request[3])
        return Atom("yes")
    if op == "unregister" and len(request) == 2:
        server._delete(request[1])
        return Atom("ok")
    if op in ("set_lock", "del_lock"):
        return True
    return Atom("ok")


_servers: dict[int, _Server] = {}
_start_lock = threading.Lock()


def _server() -> _Server:
    """This node's server, started on first use."""
    dist = _table.dist_required("Global")
    with _start_lock:
        server = _servers.get(id(dist))
        if server is None or server.dist is not dist:
            for stale in _servers.values():       # of a node stopped since: it ends
                send(stale.pid, ("stop",))
            _servers.clear()
            server = _servers[id(dist)] = _Server(dist)
            ready = threading.Event()
            spawn_system(_run, server, ready)
            if not ready.wait(CALL_TIMEOUT):
                raise TimeoutError("Global: this node's global_name_server did not start")
    return server


def _run(server: _Server, ready: threading.Event) -> None:
    server.pid = _me()
    take_name(server.pid, NAME)
    ready.set()
    _serve(server)


def take_name(pid: Pid, name: str) -> None:
    """Register ``pid`` as ``name``, taking it from the process of a node stopped
    since (the process table outlives a node; that process ends at its next message)."""
    with _table.lock:
        stale = _table.names.pop(name, None)
        if stale is not None:
            stale.name = None
    Process.register(pid, name)


def nodeup(dist, node: str) -> None:
    """From _dist: a connection to ``node`` is up (either kind of node)."""
    try:
        if _table.dist is dist:
            send(_server().pid, ("nodeup", node))
    except Exception as exc:                    # noqa: BLE001 - never the connection's end
        dist.log(f"global could not hear of {node}: {exc}")


def nodedown(dist, node: str) -> None:
    server = _servers.get(id(dist))
    if server is not None and server.dist is dist and server.pid is not None:
        send(server.pid, ("nodedown", node))


def _api(what: str, *args, timeout: float = CALL_TIMEOUT):
    _server()
    ref = _table.make_ref()
    send(_server().pid, ("api", _me(), ref, what, *args))
    msg = receive(timeout=timeout, match=lambda m: type(m) is tuple and len(m) == 3
                  and m[0] == "global_answer" and m[1] == ref)
    return msg[2]


def _name(name):
    if isinstance(name, str):
        return Atom(name)
    return name


class Global:
    """Elixir's ``:global``: names for processes, the same on every connected node."""

    @staticmethod
    def register_name(name, pid: Pid) -> str:
        """Elixir: ``:global.register_name(:name, pid)``: ``"yes"``, or ``"no"`` when
        the name (or the pid) is taken already."""
        if not isinstance(pid, Pid):
            raise TypeError(f"Global.register_name takes a name and a pid, not {pid!r}")
        return _api("register", _name(name), pid)

    @staticmethod
    def unregister_name(name) -> None:
        """Elixir: ``:global.unregister_name(:name)``."""
        _api("unregister", _name(name))

    @staticmethod
    def whereis_name(name) -> Pid | None:
        """Elixir: ``:global.whereis_name(:name)``; ``None`` for Elixir's ``:undefined``."""
        entry = _server().names.get(_name(name))
        return entry[0] if entry is not None else None

    @staticmethod
    def registered_names() -> list:
        """Elixir: ``:global.registered_names()``."""
        return sorted(_server().names, key=repr)

    @staticmethod
    def send(name, msg):
        """Elixir: ``:global.send(:name, msg)``: the message, or ValueError if no
        process has that name anywhere."""
        pid = Global.whereis_name(name)
        if pid is None:
            raise ValueError(f"Global.send: no process is registered as {name!r} in the "
                             f"cluster (Global.registered_names() lists them)")
        return send(pid, msg)

    @staticmethod
    def sync(timeout: float = CALL_TIMEOUT) -> bool:
        """Elixir: ``:global.sync()``: wait until every connected node's names are here."""
        return _api("sync", timeout=timeout)
