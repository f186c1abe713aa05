"""The port mapper's server: what ``python -m pydist epmd`` runs, and the daemon the
first node on a host starts. The protocol it speaks, and the client side, are in
``_epmd``.

One thread accepts; each connection gets a thread of its own that reads one request
within ``REQUEST_TIMEOUT`` and answers it. A registration's thread then sleeps in
``recv`` until the node's connection ends, and the name ends with it. When the last
node has gone, a one-shot timer ends the daemon ``IDLE_EXIT`` seconds later.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import threading
import time

from ._epmd import (
    ALIVE2_REQ,
    ALIVE2_RESP,
    ALIVE2_X_RESP,
    MAX_REMEMBERED,
    MAX_REQUEST,
    NAMES_REQ,
    NOT_SERVED,
    PORT2_RESP,
    PORT_PLEASE2_REQ,
    REQUEST_TIMEOUT,
    _node_fields,
    _read_exactly,
    epmd_port,
)

__all__ = ["serve"]


def _log(text: str) -> None:
    print(f"pydist epmd: {text}", file=sys.stderr, flush=True)


class _Mapper:
    def __init__(self, sock: socket.socket, idle_exit: float | None):
        self.sock = sock
        self.idle_exit = idle_exit
        self.lock = threading.Lock()
        self.nodes: dict[str, tuple[int, bytes]] = {}   # name -> (port, its ALIVE2 fields)
        self.creations: dict[str, int] = {}             # name -> its last creation
        self.last_seen = time.monotonic()
        self.closing = False
        self.own = {"127.0.0.1", "::1", sock.getsockname()[0]}   # who may register

    def serve_forever(self) -> None:
        self._arm()                       # a mapper nobody registers with ends too
        while not self.closing:
            try:
                conn, peer = self.sock.accept()
            except OSError as exc:        # shut down by _exit_if_idle, or out of descriptors
                if not self.closing:
                    _log(f"cannot accept a connection ({exc.strerror}); retrying shortly")
                    time.sleep(0.1)       # never spin, never exit while nodes are registered
                continue
            threading.Thread(target=self._handle, args=(conn, peer), daemon=True,
                             name="pydist-epmd-conn").start()
        self.sock.close()

    # No timer loop: the mapper sleeps in accept. When its last node goes, a one-shot
    # timer checks IDLE_EXIT seconds later whether it is still alone, and if so
    # shuts the listening socket, which ends accept.
    def _arm(self) -> None:
        if self.idle_exit is not None:
            timer = threading.Timer(self.idle_exit, self._exit_if_idle)
            timer.daemon = True
            timer.start()

    def _exit_if_idle(self) -> None:
        with self.lock:
            if self.nodes or time.monotonic() - self.last_seen < self.idle_exit * 0.99:
                return                    # a node came (or left again: its own timer runs)
            self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _handle(self, conn: socket.socket, peer) -> None:
        with conn:
            try:
                request = _read_request(conn, time.monotonic() + REQUEST_TIMEOUT)
                if request is None:       # connected and left: a node checking we run
                    return
                kind = request[0]
                if kind == ALIVE2_REQ:
                    if not (peer[0] in self.own or peer[0].startswith("127.")):
                        raise ValueError("registrations come from this host only, as epmd's")
                    self._register(conn, request)
                elif kind == PORT_PLEASE2_REQ:
                    with self.lock:
                        found = self.nodes.get(request[1:].decode("utf-8", "replace"))
                    # PORT2_RESP repeats the node's ALIVE2_REQ fields in their order.
                    conn.sendall(bytes([PORT2_RESP, 1]) if found is None else
                                 bytes([PORT2_RESP, 0]) + found[1])
                elif kind == NAMES_REQ and len(request) == 1:
                    with self.lock:
                        rows = sorted((n, port) for n, (port, _) in self.nodes.items())
                    conn.sendall(struct.pack(">I", self.sock.getsockname()[1]) + b"".join(
                        b"name %s at port %d\n" % (n.encode(), p) for n, p in rows))
                else:
                    raise ValueError(f"{NOT_SERVED.get(kind, 'unknown request')} "
                                     f"({kind}, {len(request)} bytes) is not served")
            except (ValueError, OSError) as exc:
                _log(f"refused a connection from {peer[0]}:{peer[1]}: {exc}")

    def _register(self, conn: socket.socket, request: bytes) -> None:
        fields = _node_fields(request[1:])
        if fields is None:
            raise ValueError("an ALIVE2_REQ whose fields do not add up")
        port, _, highest, _, name_bytes, _ = fields
        try:
            name = name_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("an ALIVE2_REQ whose name is not UTF-8") from None
        with self.lock:
            taken = name in self.nodes
            if not taken:
                self.nodes[name] = (port, request[1:])
                creation = self._next_creation(name)
        try:
            if taken:
                _log(f"the name {name!r} is already taken: registration refused")
                conn.sendall(_alive_resp(highest, 1, 0))
                return
            if self.closing:              # about to exit: the node will start a new one
                return
            conn.sendall(_alive_resp(highest, 0, creation))
            conn.settimeout(None)
            while conn.recv(64):          # the node never sends more: wait for its end
                pass
        except OSError:
            pass
        finally:
            if not taken:
                with self.lock:
                    self.nodes.pop(name, None)
                    self.last_seen = time.monotonic()
                    alone = not self.nodes
                if alone:
                    self._arm()

    def _next_creation(self, name: str) -> int:
        """As epmd: a new name starts from the clock, a name seen before takes its last
        creation + 1, never 0-3 (the creations of old nodes): pids of a node's earlier
        life then differ from those of its new one."""
        last = self.creations.pop(name, None)
        creation = (int(time.time()) if last is None else last + 1) & 0xFFFFFFFF
        self.creations[name] = creation = max(creation, 4)
        if len(self.creations) > MAX_REMEMBERED:
            del self.creations[next(iter(self.creations))]   # the oldest
        return creation


def _alive_resp(highest: int, result: int, creation: int) -> bytes:
    if highest >= 6:
        return struct.pack(">BBI", ALIVE2_X_RESP, result, creation)
    return struct.pack(">BBH", ALIVE2_RESP, result, creation % 3 + 1)   # a 2-bit creation


def _read_request(conn: socket.socket, deadline: float) -> bytes | None:
    """One framed request, or None if the client left without a word."""
    head = _read_exactly(conn, 2, deadline)
    if not head:
        return None
    if len(head) < 2:
        raise ValueError("connection closed before a full request")
    (length,) = struct.unpack(">H", head)
    if not 0 < length <= MAX_REQUEST:
        raise ValueError(f"a request of {length} bytes (they are 1 to {MAX_REQUEST})")
    request = _read_exactly(conn, length, deadline)
    if len(request) < length:
        raise ValueError("connection closed before a full request")
    return request


def serve(address: str = "127.0.0.1", port: int | None = None,
          idle_exit: float | None = None, listening=None) -> None:
    """Run a mapper in this process until it is idle for ``idle_exit`` s (or forever);
    ``listening()`` is called once it accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, epmd_port() if port is None else port))
    sock.listen(64)
    if listening is not None:
        listening()
    _Mapper(sock, idle_exit).serve_forever()


def _more_descriptors() -> None:
    """Each registration holds a descriptor: raise the soft limit to the hard one."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def _daemon_main(address: str, port: int, idle_exit: float) -> None:
    """Detach (double fork), then serve; the starter only waits for the first child."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    _more_descriptors()
    try:
        serve(address, port, idle_exit)
    except OSError:
        pass                             # another node started one first: fine
    os._exit(0)
