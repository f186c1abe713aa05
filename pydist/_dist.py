"""The distribution runtime of a node: its connections, the mesh, heartbeats.

One ``Dist`` object owns everything distribution needs: the listening socket, the
registration with the port mapper, one connection per connected node, the threads
that read them and the heartbeat. ``Node.stop()`` releases all of it.

Connections are opened on first use and form a full mesh, as in Erlang: when two
nodes connect, each tells the other which nodes it knows, and they connect to those.
A connection is lost when the other side closes it, when its process dies (the
kernel closes the socket: noticed at once), or when nothing, not even a heartbeat
tick, has arrived for ``heartbeat`` seconds (a frozen or cut-off node).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

from multiprocess.connection import Listener

from . import _epmd, _global, _names, _signals, _ticks, _tls, pg
from . import _transport as wire
from ._beam import Beam
from ._beam_handshake import PUBLISHED
from ._channel import Channel
from ._connect import CONNECT_TIMEOUT, Connecting, _thread
from ._console import console
from ._errors import BadRpc, PydistError
from ._pool import Pool
from ._process import Pid, Ref, shielded, spawn_system
from ._proctable import FIRST_PID, _table
from ._reader import Reading
from ._requests import SETTLE_LIMIT, Requesting

__all__ = ["Dist", "CONNECT_TIMEOUT", "SETTLE_LIMIT"]


class _Peer:
    """One connected node: a pydist node, or a BEAM node (``beam`` translates)."""

    def __init__(self, name: str, channel: Channel, beam: Beam | None = None):
        self.name = name
        self.channel = channel
        self.beam = beam
        self.monitors: dict[Ref, tuple[Pid, object]] = {}   # our monitors on its processes
        self.lost = False

    def encode(self, item: tuple) -> tuple[bytes, bytes] | None:
        """``item`` as this node's dialect writes it (None: nothing to send)."""
        if self.beam is not None:
            return self.beam.encode(item)
        if item[0] == wire.SEND and type(item[1]) is not int:   # a pid seen via a BEAM node
            item = (item[0], item[1].num, *item[2:])
        return wire.encode_parts(item)

    def send(self, item: tuple, shield: bool = True) -> None:
        """Encode and write ``item``; ``shield=False`` for a caller that holds its
        process's guard already (``send``), so a stop cannot land half-way."""
        data = self.encode(item)
        if data is None:
            return
        if shield:
            with shielded():
                self.channel.send(data)
        else:
            self.channel.send(data)


class Dist(Connecting, Reading, Requesting):
    def __init__(self, node: _names.NodeName, cookie: bytes, heartbeat: float,
                 tls: str | None = None):
        self.node, self.name, self.cookie, self.heartbeat = node, node.full, cookie, heartbeat
        self.tls_folder = tls and os.path.abspath(tls)   # see _tls: (accepting, connecting)
        self.tls = (None, None) if tls is None else _tls.contexts(tls)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.peers: dict[str, _Peer] = {}
        self.connecting: dict[str, threading.Event] = {}
        self.pending: dict[int, tuple] = {}           # requests waiting: ref -> (proc, node)
        self.node_monitors: dict[str, list[Pid]] = {}
        self.children: list = []                      # peers started by this node
        self.stopped = threading.Event()
        self.retick = threading.Event()               # a tick interval changed (_ticks)
        self.setup_conns: dict = {}                   # conn -> None, oldest first (_connect)
        self.pool = Pool()                            # runs the calls other nodes make
        self.touched: set[str] = set()                # nodes this cell talked to (settle)

    # ------------------------------------------------------------ start / stop
    def start(self) -> None:
        address = self.node.address()
        self.listener = _listen(address)
        try:
            self.registration = _epmd.ensure_registered(address, self.node.name,
                                                        self.listener.address[1])
        except BaseException:
            self.listener.close()
            raise
        # This incarnation's creation, as Erlang's pids and references carry it. Kept
        # when the node registers again with a restarted mapper (which hands out a new
        # one): the pids already given out must stay this node's.
        self.creation = self.registration.creation
        _thread(self._accept_loop, "accept")
        _thread(self._heartbeat_loop, "heartbeat")
        _thread(self._keep_registered, "registration")

    def stop(self) -> None:
        self.stopped.set()
        self.retick.set()
        # Its pydist peers hear that it leaves: none of them has lost it (_global_sync).
        # Its own servers (global's, pg's) end first, names and all: a node that stops
        # takes no part in the partitions its peers make as they go down with it.
        _global.leave(self)
        for proc in list(_table.procs.values()):
            if proc.spawned and proc.pid.num < FIRST_PID:
                _signals.signal(proc.pid, proc.pid, "kill", link=False)
        for child in list(self.children):
            child.stop()
        _shutdown_socket(self.listener._listener._socket)   # wakes accept()
        self.listener.close()
        _shutdown_socket(self.registration.sock)      # wakes _keep_registered
        self.registration.close()
        self._name_freed()
        for peer in list(self.peers.values()):
            peer.channel.shutdown()                   # each reader reports nodedown
        with self.changed:
            self.changed.wait_for(lambda: not self.peers, 1.0)
        self.pool.stop()

    def _name_freed(self, timeout: float = 1.0) -> None:
        """Until the mapper has seen our registration close: a Node.start of the same
        name right after Node.stop (a notebook run again) must find it free. The mapper
        reads the close in its own time (later on a loaded machine)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if _epmd.lookup(self.node.address(), self.node.name, 0.5) is None:
                    return
            except OSError:                           # no mapper: nothing holds it
                return
            time.sleep(0.005)

    def forget_in_child(self) -> None:
        """In a child forked from this node: let go of every descriptor the node holds
        without touching the shared sockets, so the child keeps neither the name nor
        the peers alive (they end with the node, not with its forks)."""
        for child in self.children:
            if child._watch_fd >= 0:
                os.close(child._watch_fd)
                child._watch_fd = -1
        self.children = []
        closers = [self.registration.close, self.listener.close,
                   *(peer.channel.conn.close for peer in self.peers.values())]
        for close in closers:
            try:
                close()
            except OSError:
                pass
        self.peers = {}
        self.stopped.set()

    def _keep_registered(self) -> None:
        """The mapper holds this node's name while our registration connection lives.
        If the mapper goes away (killed, say), register again at once, starting a new
        mapper if need be: the name is never free while this node runs."""
        address, port = self.node.address(), self.listener.address[1]
        while True:
            try:
                while self.registration.sock.recv(64):   # it never sends: wait for its end
                    pass
            except OSError:
                pass
            delay = 0.05
            while not self.stopped.is_set():
                try:
                    self.registration = _epmd.ensure_registered(address, self.node.name,
                                                                port)
                    if self.stopped.is_set():         # stopped meanwhile: free the name
                        self.registration.close()
                        return
                    self.log("the port mapper restarted; this node registered again")
                    break
                except PydistError as exc:
                    if "already taken" in str(exc):  # someone took it meanwhile
                        self.log(f"could not register again: {exc}")
                        return
                    self.stopped.wait(delay)
                    delay = min(2 * delay, 1.0)
            if self.stopped.is_set():
                return

    def log(self, text: str) -> None:
        print(f"pydist {self.name}: {text}", file=sys.stderr)

    def _add_peer(self, name: str, conn, beam: Beam | None = None) -> _Peer:
        # A silent node: its reader gives up. A BEAM node's own figure, once known.
        peer = _Peer(name, Channel(conn, name, framed=beam is None), beam)
        if beam is None:
            _ticks.limit(self, peer.channel, self.heartbeat, self.heartbeat / 4,
                         "this node's heartbeat")
        else:
            _ticks.limit(self, peer.channel, max(self.heartbeat, _ticks.BEAM_TICKTIME),
                         _ticks.FIRST_TICKS, "Erlang's default net_ticktime")
        with self.changed:
            others = [n for n in self.peers if n != name]
            self.peers[name] = peer
            self.changed.notify_all()
        if beam is not None:
            spawn_system(_ticks.learn, self, name)    # its net_ticktime, to go by
        if beam is None:
            peer.channel.send(wire.encode_parts((wire.NODES, others)))
        elif beam.flags & PUBLISHED:              # the mesh, for both kinds of node
            news = wire.encode_parts((wire.NODES, [name]))
            for other in list(self.peers.values()):
                if other.beam is None and other is not peer:
                    other.channel.send(news)      # our pydist peers meet it too
        if beam is None or beam.flags & PUBLISHED:
            _global.nodeup(self, name)            # global syncs names with a full member
            pg.nodeup(self, name)                 # pg's scopes discover theirs there
        return peer

    def _lost(self, peer: _Peer) -> None:
        with self.changed:
            if peer.lost:
                return
            peer.lost = True
            if self.peers.get(peer.name) is peer:
                del self.peers[peer.name]
                _global.nodedown(self, peer.name)     # before the next nodeup of it
            self.changed.notify_all()
            watchers = self.node_monitors.pop(peer.name, [])
            calls = [ref for ref, (_, node) in list(self.pending.items()) if node == peer.name]
        peer.channel.close()
        for pid in watchers:
            proc = _table.lookup(pid)
            if proc is not None:
                proc.deliver(("nodedown", peer.name))
        for ref, (watcher, target) in list(peer.monitors.items()):
            _table.down(watcher, ref, target, "noconnection")
        for ref in calls:
            self.reply(ref, False, BadRpc("nodedown", peer.name,
                                          f"the connection to {peer.name} was lost"))
        with _table.lock:                 # its processes no longer watch ours
            for proc in _table.procs.values():
                for ref in [r for r, (w, _) in proc.watchers.items() if w.node == peer.name]:
                    del proc.watchers[ref]
        _signals.node_lost(peer.name)

    def _heartbeat_loop(self) -> None:
        """Every heartbeat/2 s, a tick to each node we sent nothing to for heartbeat/4
        s: so every node hears from us at least every 3/4 heartbeat, and its reader,
        which gives up after a whole heartbeat of silence (see _reader), never does
        while we live. A BEAM node by its own net_ticktime instead (see _ticks).
        Nothing else runs on a timer: an idle node sleeps."""
        while not self.stopped.is_set():
            self.retick.wait(_ticks.period(self))
            self.retick.clear()
            now = time.monotonic()
            for peer in list(self.peers.values()):
                if now - peer.channel.last_write >= peer.channel.tick_every:
                    peer.channel.tick()

    # ------------------------------------------------------------ sending
    def send_item(self, node: str, item: tuple, shield: bool = True) -> bool:
        """``item`` to ``node``, connecting first if need be. ``shield``: see _Peer.send."""
        peer = self.peers.get(node)
        if peer is None:
            wire.encode_parts(item)           # a TypeError reaches the sender, unconnected
            peer = self.connect(node)
            if peer is None:
                return False
        self.touched.add(node)
        peer.send(item, shield)
        return True

    def send_io(self, leader: Pid, stream: int, text: str) -> None:
        peer = self.peers.get(leader.node)
        if peer is None:
            console.emit(stream, text, None)
        else:
            peer.send((wire.IO, leader, stream, None, text, time.monotonic()))

    def send_down(self, watcher: Pid, ref: Ref, target, reason) -> None:
        peer = self.peers.get(watcher.node)
        if peer is not None:
            self.send_signal(peer, (wire.DOWN, ref, watcher, target, reason))

    def send_signal(self, peer: _Peer, item: tuple) -> None:
        """A DOWN, LINK, UNLINK or EXIT to ``peer``; its reason as text if it has no
        form on that wire. From a reader thread, through the writer (never blocks)."""
        try:
            data = peer.encode(item)
        except (TypeError, ValueError):               # no form on that wire: its text
            at = 3 if item[0] == wire.EXIT else len(item) - 1
            data = peer.encode(item[:at] + (repr(item[at]),) + item[at + 1:])
        if data is None:
            return
        if getattr(_table.local, "reader", False):
            peer.channel.send_later(data)
        else:
            with shielded():
                peer.channel.send(data)

    def monitor_remote(self, ref: Ref, watcher: Pid, target) -> None:
        node = target.node if isinstance(target, Pid) else target[1]
        peer = self.connect(node)
        if peer is None:
            _table.down(watcher, ref, target, "noconnection")
            return
        peer.monitors[ref] = (watcher, target)
        peer.send((wire.MONITOR, ref, watcher, target))
        if peer.lost and peer.monitors.pop(ref, None) is not None:
            _table.down(watcher, ref, target, "noconnection")

    def demonitor(self, ref: Ref) -> None:
        for peer in list(self.peers.values()):
            watched = peer.monitors.pop(ref, None)
            if watched is not None:
                peer.send((wire.DEMONITOR, ref, *watched))


def _listen(address: str) -> Listener:
    """A listening socket on a port the kernel picks, or on the first free one of
    ``PYDIST_PORTS`` (e.g. ``9100-9199``: Erlang's inet_dist_listen_min/max), so that a
    firewall between machines need open only those and the mapper's port."""
    wanted = os.environ.get("PYDIST_PORTS", "").strip()
    if not wanted:
        return Listener((address, 0), family="AF_INET", backlog=64)
    low, _, high = wanted.partition("-")
    try:
        ports = range(int(low), int(high or low) + 1)
    except ValueError:
        raise ValueError(f"PYDIST_PORTS is a port or a range like 9100-9199, "
                         f"not {wanted!r}") from None
    for port in ports:
        try:
            return Listener((address, port), family="AF_INET", backlog=64)
        except OSError:
            continue
    raise PydistError(f"no free port in PYDIST_PORTS={wanted} on {address}: widen the range")


def _shutdown_socket(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
