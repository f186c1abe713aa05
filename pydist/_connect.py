"""Connecting two nodes: dialling out, accepting, and the handshake's steps in order.

Erlang's twin is ``dist_util.erl``: a connection is set up in named steps, each with
its deadline, and only then handed to the node (``Dist._add_peer``) and its reader.

Dialling (``connect``): ask the other host's port mapper for the node's port; connect;
TLS first if this node uses it; our greeting; both cookie challenges; the answer OK,
DUP (both dialled at once: the smaller name's connection wins) or NAK. All of it
within ``timeout``: whatever the other end does, the result is a peer or None.

Accepting: at most ``MAX_SETUPS`` connections are set up at once, each within
``SETUP_TIME``; a new one past the bound evicts the oldest still being set up (its
socket is shut down). So connections that stall cannot keep a node out, however many
they are and however often renewed: a real node's set-up takes milliseconds, and only
``MAX_SETUPS`` newer connections arriving meanwhile could evict it (closing the newest
instead, as before, let 64 stalled sockets refuse everyone for 5 s at a time). Out of
descriptors, the accept loop waits instead of spinning. Nothing the other side sends
is unpickled before the challenges pass.
"""

from __future__ import annotations

import errno
import socket
import threading

from . import _beam_handshake, _epmd, _names
from . import _transport as wire
from ._beam import Beam

__all__ = ["Connecting", "CONNECT_TIMEOUT"]

CONNECT_TIMEOUT = 2.0          # seconds to find, reach and authenticate a node


def _thread(target, name: str, *args) -> None:
    threading.Thread(target=target, args=args, daemon=True, name=f"pydist-{name}").start()


class Connecting:
    """The connecting half of ``_dist.Dist``."""

    def connect(self, node: str, timeout: float = CONNECT_TIMEOUT) -> object:
        peer = self.peers.get(node)
        if peer is not None or self.stopped.is_set():
            return peer
        target = _names.parse(node)
        if target.long != self.node.long:
            kinds = ("long", "short") if self.node.long else ("short", "long")
            self.log(f"cannot connect to {node}: this node has a {kinds[0]} name and "
                     f"{node} a {kinds[1]} one (Erlang refuses to mix them too)")
            return None
        with self.lock:
            event = self.connecting.get(node)
            mine = event is None
            if mine:
                event = self.connecting[node] = threading.Event()
        if not mine:
            event.wait(timeout)
            return self.peers.get(node)
        try:
            return self._dial(target, timeout)
        finally:
            with self.lock:
                del self.connecting[node]
            event.set()

    def _dial(self, target: _names.NodeName, timeout: float) -> object:
        """The connecting side: find the port, connect, then the handshake's steps
        (see _transport), all within ``timeout``; whatever the other end answers, the
        result is a connected peer or None."""
        try:
            address = target.address()
            entry = _epmd.lookup(address, target.name, timeout=timeout)
            if entry is None:
                return None
            port = entry.port
            if not entry.pydist and self.tls[1] is not None:
                self.log(f"{target.full} is a BEAM node: it cannot speak this node's TLS "
                         f"(start this node without tls= to reach it)")
                return None
            conn = wire.open_connection((address, port), timeout,
                                        self.tls[1] if entry.pydist else None)
        except (OSError, ValueError):
            return None
        if not entry.pydist:
            return self._dial_beam(target, conn, timeout)
        try:
            with wire.SetupDeadline(conn, timeout):
                status = wire.client_handshake(conn, self.name, target.full, self.cookie)
        except wire.AuthenticationError:
            conn.close()
            self.log(f"{target.full} refused the connection: the cookies differ "
                     f"(give both nodes the same cookie: cookie=..., --cookie or PYDIST_COOKIE)")
            return None
        except (OSError, EOFError):
            conn.close()                  # gone, or too slow: the deadline shut it
            return None
        except Exception as exc:          # not a pydist node at all (garbage, an impostor)
            conn.close()
            self.log(f"{target.full} at {address}:{port} is not a pydist node "
                     f"({type(exc).__name__} in the handshake): connection dropped")
            return None
        if status == wire.OK:
            peer = self._add_peer(target.full, conn)
            _thread(self._read, f"reader-{target.full}", peer)
            return peer
        conn.close()
        if status == wire.DUP:                        # its connection to us wins
            with self.changed:
                self.changed.wait_for(lambda: target.full in self.peers, timeout)
            return self.peers.get(target.full)
        self.log(f"{target.full} refused the connection: {status.decode(errors='replace')}")
        return None

    def _dial_beam(self, target: _names.NodeName, conn, timeout: float) -> object:
        """The connecting side, to a BEAM node: Erlang's handshake (_beam_handshake)."""
        try:
            with wire.SetupDeadline(conn, timeout):
                other = _beam_handshake.dial(conn, self.name, self.creation, target.full,
                                             self.cookie)
        except wire.AuthenticationError:
            conn.close()
            self.log(f"{target.full} refused the connection: the cookies differ (give both "
                     f"nodes the same cookie: --cookie for both, or ~/.erlang.cookie)")
            return None
        except ConnectionRefusedError:    # "nok": it is dialling us too, and it wins
            conn.close()
            with self.changed:
                self.changed.wait_for(lambda: target.full in self.peers, timeout)
            return self.peers.get(target.full)
        except (OSError, EOFError, ValueError) as exc:
            conn.close()
            if not isinstance(exc, (OSError, EOFError)):
                self.log(f"cannot connect to {target.full}: {exc}")
            return None
        with self.lock:
            if target.full in self.peers:         # its own connection to us came first
                conn.close()
                return self.peers[target.full]
            beam = Beam(self, target.full, other.flags, other.creation)
            peer = self._add_peer(target.full, conn, beam)
        _thread(self._read, f"reader-{target.full}", peer)
        return peer

    def _accept_loop(self) -> None:
        """Accept connections; each is set up in a thread of its own, at most
        MAX_SETUPS at once (a new one evicts the oldest), each within SETUP_TIME."""
        out_of_descriptors = False
        while not self.stopped.is_set():
            try:
                conn = wire.accept(self.listener._listener._socket, self.tls[0])
            except OSError as exc:
                if self.stopped.is_set():
                    return
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    if not out_of_descriptors:  # say it once, then wait: never spin
                        self.log(f"cannot accept connections: {exc.strerror}; "
                                 f"waiting for some to close")
                    out_of_descriptors = True
                    self.stopped.wait(0.1)
                continue
            out_of_descriptors = False
            with self.lock:               # dicts keep their order: the oldest first
                while len(self.setup_conns) >= wire.MAX_SETUPS:
                    oldest = next(iter(self.setup_conns))
                    del self.setup_conns[oldest]
                    wire._shutdown(oldest)    # its thread sees the end, closes it, goes
                self.setup_conns[conn] = None
            _thread(self._handshake_in, "handshake", conn)

    def _handshake_in(self, conn) -> None:
        """The accepting side of one connection: its handshake, then its reader."""
        try:
            with wire.SetupDeadline(conn, wire.SETUP_TIME):
                peer = self._accept_steps(conn)
        finally:
            with self.lock:               # before any close: evicting shuts it down
                self.setup_conns.pop(conn, None)
        if peer is None:
            conn.close()
            return
        threading.current_thread().name = f"pydist-reader-{peer.name}"
        self._read(peer)

    def _accept_steps(self, conn) -> object:
        where, src = _peer_address(conn), "?"
        try:
            if self.tls[0] is None and _beam_handshake.is_erlang(_peek(conn, 3)):
                return self._accept_beam(conn)
            src, dst = wire.read_hello(conn)
            if dst != self.name:
                conn.send_bytes(wire.NAK + b" this is " + self.name.encode())
                raise ValueError(f"it asked for {dst}")
            if _names.parse(src).long != self.node.long:
                conn.send_bytes(wire.NAK + b" short and long names do not mix")
                kind = "long" if self.node.long else "short"
                raise ValueError(f"{src} does not use {kind} names")
            wire.server_handshake(conn, self.cookie)
            with self.lock:
                if src in self.peers or (src in self.connecting and self.name < src):
                    conn.send_bytes(wire.DUP)
                    return None
                conn.send_bytes(wire.OK)
                return self._add_peer(src, conn)
        except wire.AuthenticationError:
            self.log(f"connection attempt from node {src} rejected: the cookies differ")
        except (EOFError, ConnectionResetError):
            pass                          # it went away mid-handshake (a node killed, say)
        except Exception as exc:          # garbage, a stall past the deadline, a bad name
            why = "too slow (the setup deadline passed)" if isinstance(exc, OSError) else exc
            self.log(f"refused a connection from {where}: {why}")
        return None


    def _accept_beam(self, conn) -> object:
        """The accepting side, for a BEAM node: Erlang's handshake (_beam_handshake)."""
        def may_connect(name: str, creation: int) -> str:
            if _names.parse(name).long != self.node.long:
                raise ValueError(f"{name}: short and long names do not mix")
            with self.lock:
                old = self.peers.get(name)
                if old is not None:       # the same run of it: a duplicate from a race
                    same = old.beam is not None and old.beam.creation == creation
                    return "nok" if same else "alive"
                # both dialling at once: the greater name's connection wins (net_kernel)
                return "nok" if name in self.connecting and self.name > name else "ok"

        def replace(name: str) -> None:   # it says our connection from it is stale
            old = self.peers.get(name)
            if old is not None:
                old.channel.shutdown()    # its reader reports nodedown
                with self.changed:
                    self.changed.wait_for(lambda: name not in self.peers, 1.0)
        try:
            other = _beam_handshake.accept(conn, self.name, self.creation, self.cookie,
                                           may_connect, replace)
        except wire.AuthenticationError as exc:
            self.log(str(exc))            # as iex says it
            return None
        if other is None:
            return None
        with self.lock:
            if other.name in self.peers:
                return None
            beam = Beam(self, other.name, other.flags, other.creation)
            return self._add_peer(other.name, conn, beam)


def _peek(conn, size: int) -> bytes:
    """The first ``size`` bytes of a new connection, left unread (at most
    HANDSHAKE_TIMEOUT to arrive: a silent client is refused like a stalled one)."""
    wire.recv_timeout(conn, wire.HANDSHAKE_TIMEOUT)
    sock = socket.socket(fileno=conn.fileno())
    try:
        return sock.recv(size, socket.MSG_PEEK | socket.MSG_WAITALL)
    except BlockingIOError:
        raise TimeoutError("nothing arrived") from None
    finally:
        sock.detach()


def _peer_address(conn) -> str:
    sock = socket.socket(fileno=conn.fileno())
    try:
        host, port = sock.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return "an unknown address"
    finally:
        sock.detach()
