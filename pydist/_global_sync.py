"""Global names, the protocol with other nodes: the steps of this node's
``global_name_server`` (its process and mailbox are in ``_global``).

Elixir's twin is the server of kernel's ``global.erl``: a process registered as
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
    {in_sync, Node, true}                             to each node we meet through him
    {register, Name, Pid, Method} ($gen_call)         a name from a registration

OTP 25's prevent_overlapping_partitions (measured with three Elixir nodes: after
``Node.disconnect(b)`` on a, c drops both a and b, and the three end apart):

    at a nodedown we did not ask for                 {lost_connection, Me, Creation,
                                                      OpId, Node} to every node we know
                                                      (see _inform_loss); at our own
                                                      Node.disconnect, as soon as closed
    {lost_connection, A, _, _, B} from another node  passed on once; then we ask B to
                                                      drop us: {remove_connection, Me}
      ... where B is us                              A's end is ours: we tell the others
                                                      we lost A, and drop it
    {remove_connection, N}                           we drop N; neither side reports it

    pydist's own, between pydist nodes (a BEAM node halts without a word):
    {leaving, N} from a node N that stops            no one lost N: its connections all
                                                      go at once, and nobody reports it
"""

from __future__ import annotations

import itertools
import threading
import time

from . import _etf
from ._global_names import CALL_TIMEOUT, DEFAULT_METHOD, NameTable
from ._process import Pid, _table, receive, send

Atom = _etf.Atom
VSN = 8                                     # global's ?vsn in OTP 25
NAME = "global_name_server"
REMOVE_GRACE = 2.0                          # a node asked to drop us that does not: we do
LOST_KEPT = 3600.0                          # a lost_connection is remembered an hour, as OTP's
_tags = itertools.count(1)
_op_ids = itertools.count(1)                # lost_connection's OpId: rising, per incarnation


def _to(node: str, msg) -> None:
    """A message to global_name_server at ``node``, only if connected: global's sends
    never set up a connection (gns_volatile_send's noconnect), or a node dropped to
    end a partition would be joined again at once."""
    dist = _table.dist
    if dist is not None and str(node) in dist.peers:
        send((NAME, str(node)), msg)


def _cast(node: str, msg) -> None:
    _to(node, (Atom("$gen_cast"), msg))


def _drop(peer) -> None:
    """End our connection to ``peer``, once what we sent it is written: a
    lost_connection queued for it just before must still reach it."""
    peer.channel.flush()
    peer.channel.shutdown()


def _me() -> Pid:
    return (getattr(_table.local, "proc", None) or _table.current()).pid


class Server:
    """The state of this node's global_name_server (one per running node)."""

    def __init__(self, dist):
        self.dist, self.me = dist, Atom(dist.name)
        self.table = NameTable()
        self.known: set[str] = set()          # nodes synced with us
        self.my_tag: dict[str, int] = {}      # sessions under way: pending nodes
        self.his_tag: dict[str, int] = {}
        self.sent_lock: set[str] = set()
        self.locked: set[str] = set()
        self.his_names: dict[str, list] = {}
        self.my_ops: dict[str, list] = {}
        self.his_resolved: dict[str, tuple] = {}
        self.exchanged: set[str] = set()
        self.removing: set[str] = set()       # asked to drop us: its nodedown is no loss
        self.seen_lost: dict = {}             # (A, B) -> (creation, op id, when) handled
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
        if node in self.removing:              # we asked for it, or were asked
            self.removing.discard(node)
        elif node in self._members() and not self.dist.stopped.is_set():
            self._inform_loss(node)            # (a node that stops loses no one: it leaves)
        self._forget(node)
        self.table.node_gone(node)
        self._check_waiters()

    def _forget(self, node: str) -> None:
        """handle_nodedown: ``node`` is no part of our cluster any more."""
        for d in (self.my_tag, self.his_tag):
            d.pop(node, None)
        self._reset(node)
        self.known.discard(node)

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
            self._later(0.1, ("retry_lock", node))
            return
        self._lock_set(node)
        if node in self.locked:
            return
        self.locked.add(node)
        _cast(node, (Atom("exchange"), self.me, self.table.as_list(), [],
                     self.his_tag[node]))
        self._resolve(node)

    def exchange(self, node, names, tag) -> None:
        node = str(node)
        if tag == self.my_tag.get(node):
            self.his_names[node] = names
            self._resolve(node)

    def _resolve(self, node: str) -> None:
        if node not in self.locked or node not in self.his_names or node in self.exchanged:
            return
        self.exchanged.add(node)
        ops, res = self.table.exchange_ops(self.me, node, self.his_names.pop(node))
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
        self.table.do_ops(ops)
        for state in (self.my_tag, self.his_tag):
            state.pop(node, None)
        self._reset(node)
        self.known.add(node)
        self._meet(new[1:])
        self._check_waiters()

    def new_nodes(self, ops, nodes) -> None:
        self.table.do_ops(ops)
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
        if node not in self.removing:
            self.known.add(node)
        self._check_waiters()

    # ------------------------------------------------------------ partitions
    def _members(self) -> set[str]:
        """Every node we know or are syncing with: who hears of a lost connection."""
        return self.known | set(self.my_tag) | set(self.his_tag)

    def _inform_loss(self, node: str) -> None:
        """inform_connection_loss: we lost ``node``; every other node must lose it too,
        or names would be held on one side of a partition and not the other.
        Told to every node we know, which pass it on to every node they know."""
        msg = (Atom("lost_connection"), self.me, self.dist.creation, next(_op_ids),
               Atom(node))
        for other in sorted(self._members() - {node}):
            _to(other, msg)

    def disconnecting(self, node: str) -> None:
        """Node.disconnect(node) here has just closed it: we tell the others now, and
        its nodedown, when the reader sees it, is not news."""
        if node in self._members() and node not in self.removing:
            self._inform_loss(node)
            self._remove(node)

    def leaving(self, node: str) -> None:
        """{leaving, N}: N stops (sent before its connections close, so it comes before
        its nodedown). Each of its peers would otherwise tell the others it lost N, and
        a peer whose own nodedown of N lagged behind that news would log a partition
        that is not one."""
        if node in self._members():
            self._remove(node)

    def lost_connection(self, msg) -> None:
        """{lost_connection, A, Creation, OpId, B}: A lost B, so we ask B to drop us
        (when B is us, see _lost_by)."""
        _, a, creation, op_id, b = msg
        a, b = str(a), str(b)
        now = time.monotonic()
        for key, (_c, _o, when) in list(self.seen_lost.items()):
            if now - when > LOST_KEPT:
                del self.seen_lost[key]
        seen = self.seen_lost.get((a, b))
        if seen is not None and seen[0] == creation and op_id <= seen[1]:
            return                             # handled already: it comes by many ways
        self.seen_lost[(a, b)] = (creation, op_id, now)
        for other in sorted(self._members() - {a}):
            _to(other, msg)                    # every node hears of it, though A fail now
        if b == self.dist.name:
            self._lost_by(a)
            return
        peer = self.dist.peers.get(b)          # (its reader may drop it any moment)
        if b in self._members() and peer is not None:
            self.dist.log(f"'global' requested disconnect from {b} to prevent "
                          f"overlapping partitions ({a} lost it)")
            self._remove(b)
            _to(b, (Atom("remove_connection"), self.me))
            self._later(REMOVE_GRACE, ("remove_overdue", b, id(peer)))  # it drops us, or we do

    def _lost_by(self, a: str) -> None:
        """A says it lost us, and we have not handled that connection's end yet: our
        reader may lag behind a message that came round by another node, or its
        nodedown waits in our mailbox behind this message. Its end is ours, as if
        seen: the others hear now that we lost A, before anything they send next (a
        remove_connection) can cut us off from them."""
        if a not in self._members():
            return
        self._inform_loss(a)
        self._remove(a)                        # reported: its nodedown is not again
        peer = self.dist.peers.get(a)
        if peer is not None:
            _drop(peer)

    def remove_connection(self, node: str) -> None:
        """{remove_connection, N}: N was told that one of our peers lost us: we drop N."""
        peer = self.dist.peers.get(node)
        if peer is not None and node in self._members():
            self.dist.log(f"'global' disconnected {node} to prevent overlapping partitions")
            self._remove(node)
            _drop(peer)

    def remove_overdue(self, node: str, peer_id: int) -> None:
        peer = self.dist.peers.get(node)
        if peer is not None and id(peer) == peer_id and node in self.removing:
            _drop(peer)

    def _later(self, delay: float, msg) -> None:
        """``msg`` to this server in ``delay`` seconds (nothing if it has ended)."""
        def deliver():
            if self.pid is not None and self.dist is _table.dist:
                send(self.pid, msg)
        timer = threading.Timer(delay, deliver)
        timer.daemon = True
        timer.start()

    def _remove(self, node: str) -> None:
        self.removing.add(node)
        self._forget(node)
        self._check_waiters()

    # ------------------------------------------------------------ names
    def register(self, name, pid) -> str:
        """global:register_name: on every known node, under a lock on all of them."""
        if self.table.taken(name, pid):
            return "no"
        nodes = sorted(self.known & set(self.dist.peers))
        lock = (Atom("global"), _me())
        _multi_call(nodes, (Atom("set_lock"), lock))
        try:
            _multi_call(nodes, (Atom("register"), name, pid, DEFAULT_METHOD))
            self.table.insert(name, pid, DEFAULT_METHOD)
        finally:
            _multi_call(nodes, (Atom("del_lock"), lock))
        return "yes"

    def unregister(self, name) -> None:
        nodes = sorted(self.known & set(self.dist.peers))
        _multi_call(nodes, (Atom("unregister"), name))
        self.table.delete(name)

    # ------------------------------------------------------------ this node's calls
    def api(self, caller, ref, what: str, *args) -> None:
        """Global's calls from this node: answered ("global_answer", ref, value)."""
        if what != "sync" and self.my_tag:     # a sync under way: after it, as global's
            self.deferred.append((caller, ref, what, *args))   # lock would make it wait
            return
        if what == "register":
            value = self.register(*args)
        elif what == "unregister":
            value = self.unregister(*args)
        elif not self.synced():                # "sync": when every node is known
            self.waiters.append((caller, ref))
            return
        else:
            value = True
        send(caller, ("global_answer", ref, value))

    # ------------------------------------------------------------ sync
    def _known_list(self) -> list:
        return [(Atom(n), VSN) for n in sorted(self.known) if n in self.dist.peers]

    def synced(self) -> bool:
        return all(n in self.known or n in self.removing for n in self.dist.peers)

    def _check_waiters(self) -> None:
        while self.deferred and not self.my_tag:
            self.api(*self.deferred.pop(0))
        if self.synced():
            for pid, ref in self.waiters:
                send(pid, ("global_answer", ref, True))
            self.waiters = []


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
