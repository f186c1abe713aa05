"""The port mapper: Erlang's ``epmd``, one per host address, speaking epmd's protocol.

A node listens on a port chosen by the kernel; other nodes find it by asking the
mapper of the node's host, which listens on a well-known port (4369, Erlang's). The
mapper speaks epmd's own binary protocol, so pydist and BEAM nodes on one host share
one mapper, whichever started it: a pydist node registers with Erlang's ``epmd`` when
one runs, and ``iex --sname x`` registers with pydist's. The first node on a host
starts the mapper as a detached daemon (as Erlang starts ``epmd``); pydist's daemon
exits by itself ``IDLE_EXIT`` seconds after its last node has gone, so nothing is left
running on a learner's machine or in CI. ``python -m pydist epmd`` runs one in the
foreground (it then stays until Ctrl-C); ``python -m pydist names`` lists names.

Each request is a 2-byte length, then the request; integers are big-endian. Nothing
a stranger sends is deserialized beyond these fixed fields:

    ALIVE2_REQ        120 PortNo:2 NodeType:1 Protocol:1 Highest:2 Lowest:2
                          Nlen:2 Name Elen:2 Extra          (from this host only)
      -> ALIVE2_X_RESP  118 Result:1 Creation:4            the connection stays open:
                                                           the name lives as long as it
                                                           does (a crashed node's name
                                                           frees itself)
    PORT_PLEASE2_REQ  122 Name
      -> PORT2_RESP     119 0 PortNo:2 NodeType:1 Protocol:1 Highest:2 Lowest:2
                          Nlen:2 Name Elen:2 Extra        or  119 1 (unknown name)
    NAMES_REQ         110
      -> MapperPort:4, then "name <name> at port <port>\\n" per node
    anything else (KILL, STOP, DUMP, garbage, too long, too slow): the connection is
    closed and one line is logged

pydist nodes register with ``Extra = PYDIST_EXTRA``: that is how ``lookup`` tells a
pydist node from a BEAM one.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import NamedTuple

from ._errors import PydistError

__all__ = ["epmd_port", "serve", "ensure_registered", "register", "lookup", "names",
           "Entry", "Registration", "PYDIST_EXTRA"]

DEFAULT_PORT = 4369           # Erlang's epmd port: one mapper for BEAM and pydist nodes
IDLE_EXIT = 3.0               # seconds an auto-started mapper waits with no node left
REQUEST_TIMEOUT = 2.0         # seconds a client has to send its whole request
START_TIMEOUT = 5.0           # seconds a node waits for a mapper it started

ALIVE2_REQ, ALIVE2_X_RESP, ALIVE2_RESP = 120, 118, 121   # register; 121 answers pre-6 nodes
PORT_PLEASE2_REQ, PORT2_RESP = 122, 119                   # where does a node listen?
NAMES_REQ = 110                                           # every name, as text
NOT_SERVED = {100: "DUMP_REQ", 107: "KILL_REQ", 115: "STOP_REQ"}  # nobody stops the mapper

NORMAL_NODE = 77              # node type (72 is a hidden node)
TCP_IPV4 = 0                  # protocol
VERSION = 6                   # the handshake pydist nodes take: Erlang's 'N', OTP 23+
PYDIST_EXTRA = b"pydist"      # the Extra field of a pydist node's registration
MAX_NAME = 255                # bytes in a name or an Extra field (epmd's MAXSYMLEN)
MAX_REQUEST = 13 + 2 * MAX_NAME   # the longest possible ALIVE2_REQ
MAX_REMEMBERED = 1000         # names whose last creation is kept after they leave
MAX_REPLY = 1 << 20           # a names list longer than this is not from a mapper


def epmd_port() -> int:
    """The mapper's port: ``PYDIST_EPMD_PORT``, else Erlang's ``ERL_EPMD_PORT``, else
    4369, epmd's own, so that pydist and Erlang nodes find each other with no flags."""
    for variable in ("PYDIST_EPMD_PORT", "ERL_EPMD_PORT"):
        value = os.environ.get(variable, "")
        if value:
            if value.isdigit() and 0 < int(value) < 65536:
                return int(value)
            raise ValueError(f"{variable} must be a port number, not {value!r}")
    return DEFAULT_PORT


def _log(text: str) -> None:
    print(f"pydist epmd: {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the server

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
        name, port, highest = _alive2_fields(request)
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


def _alive2_fields(request: bytes) -> tuple[str, int, int]:
    """Check an ALIVE2_REQ field by field; its name, port and highest version."""
    if len(request) < 13:
        raise ValueError("an ALIVE2_REQ too short to hold its fields")
    port, _type, _protocol, highest, _lowest, nlen = struct.unpack_from(">HBBHHH", request, 1)
    elen = struct.unpack_from(">H", request, 11 + nlen)[0] if len(request) >= 13 + nlen else 0
    if len(request) != 13 + nlen + elen:
        raise ValueError("an ALIVE2_REQ whose lengths do not add up")
    if not 0 < nlen <= MAX_NAME or elen > MAX_NAME or port == 0:
        raise ValueError("an ALIVE2_REQ with an empty or too long name, or port 0")
    try:
        return request[11:11 + nlen].decode("utf-8"), port, highest
    except UnicodeDecodeError:
        raise ValueError("an ALIVE2_REQ whose name is not UTF-8") from None


def _read_exactly(conn: socket.socket, size: int, deadline: float) -> bytes:
    """``size`` bytes, all of them before ``deadline`` (a client dripping one byte at a
    time is cut off as surely as a silent one); fewer only if the client leaves."""
    data = b""
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ValueError("too slow to send its request")
        conn.settimeout(left)
        try:
            chunk = conn.recv(size - len(data))
        except socket.timeout:
            raise ValueError("too slow to send its request") from None
        if not chunk:
            break
        data += chunk
    return data


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


# ---------------------------------------------------------------- the client

class Registration(NamedTuple):
    """A name registered with a mapper: ``sock`` *is* the registration (close it to
    free the name); ``creation`` is what the mapper gave this incarnation."""
    sock: socket.socket
    creation: int

    def close(self) -> None:
        self.sock.close()


class Entry(NamedTuple):
    """What a mapper knows of a node: its port, and whether it is a pydist node (its
    Extra field says so) or a BEAM one, which speaks Erlang's handshake."""
    port: int
    pydist: bool
    node_type: int
    highest: int
    lowest: int
    extra: bytes


class _NoAnswer(PydistError):
    pass


def _frame(request: bytes) -> bytes:
    return struct.pack(">H", len(request)) + request


def _ask(address: str, request: bytes, timeout: float) -> bytes:
    """Send one request; the whole answer (the mapper closes after it), within
    ``timeout`` in all; OSError if no mapper answers, ValueError if it is too long."""
    data, deadline = b"", time.monotonic() + timeout
    with socket.create_connection((address, epmd_port()), timeout=timeout) as sock:
        sock.sendall(_frame(request))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise OSError("the port mapper's answer took too long")
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
            if len(data) > MAX_REPLY:
                raise ValueError("not a port mapper's answer (too long)")


def ensure_running(address: str, timeout: float = START_TIMEOUT) -> None:
    """Start a daemon mapper on ``address`` unless one (pydist's or Erlang's epmd)
    already answers there."""
    try:
        socket.create_connection((address, epmd_port()), timeout=1.0).close()
        return
    except OSError:
        pass
    idle = os.environ.get("PYDIST_EPMD_IDLE", str(IDLE_EXIT))
    starter = subprocess.Popen(
        [sys.executable, "-m", "pydist", "epmd", "--daemon", "--address", address,
         "--port", str(epmd_port()), "--idle", idle],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    starter.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, epmd_port()), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.005)
    raise PydistError(f"the port mapper did not start on {address}:{epmd_port()}; "
                      f"is the port used by another program? Set PYDIST_EPMD_PORT.")


def register(address: str, name: str, port: int, timeout: float = 2.0) -> Registration:
    """Register ``name`` as a pydist node listening on ``port`` (ALIVE2_REQ)."""
    where, encoded = f"{address}:{epmd_port()}", name.encode()
    request = struct.pack(">BHBBHHH", ALIVE2_REQ, port, NORMAL_NODE, TCP_IPV4, VERSION,
                          VERSION, len(encoded)) + encoded + \
        struct.pack(">H", len(PYDIST_EXTRA)) + PYDIST_EXTRA
    try:
        sock = socket.create_connection((address, epmd_port()), timeout=timeout)
    except OSError as exc:
        raise _NoAnswer(f"no port mapper answers at {where} ({exc})") from None
    try:
        sock.sendall(_frame(request))
        deadline = time.monotonic() + timeout
        reply = _read_exactly(sock, 2, deadline)
        if reply[:1] in (bytes([ALIVE2_X_RESP]), bytes([ALIVE2_RESP])):
            reply += _read_exactly(sock, 4 if reply[0] == ALIVE2_X_RESP else 2, deadline)
    except (OSError, ValueError):
        sock.close()
        raise _NoAnswer(f"no port mapper answered at {where} within {timeout} s; is that "
                        f"port used by another program, not an epmd? Set PYDIST_EPMD_PORT "
                        f"to a free port.") from None
    if not reply:                        # a mapper on its way out: start another
        sock.close()
        raise _NoAnswer(f"the port mapper at {where} closed without answering")
    if len(reply) not in (4, 6) or reply[0] not in (ALIVE2_X_RESP, ALIVE2_RESP):
        sock.close()
        raise PydistError(f"what answers at {where} is not a port mapper (epmd): the port "
                          f"is used by another program. Set PYDIST_EPMD_PORT to a free port.")
    if reply[1] != 0:
        sock.close()
        raise PydistError(f"the name {name!r} is already taken on this host: stop that node "
                          f"(another notebook's? Kernel → Shut Down Kernel there) or pick "
                          f"another name; `python -m pydist names` lists the running nodes")
    sock.settimeout(None)
    return Registration(sock, int.from_bytes(reply[2:], "big"))


def ensure_registered(address: str, name: str, port: int) -> Registration:
    """Start the mapper if needed and register; retried, because a mapper that has
    just decided to exit (idle) may still accept a connection and then drop it."""
    for attempt in range(3):
        ensure_running(address)
        try:
            return register(address, name, port)
        except _NoAnswer:
            if attempt == 2:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


def lookup(address: str, name: str, timeout: float = 2.0) -> Entry | None:
    """What the mapper of that host knows of ``name`` (PORT_PLEASE2_REQ), or ``None``;
    ``OSError`` if no mapper runs there."""
    reply = _ask(address, bytes([PORT_PLEASE2_REQ]) + name.encode(), timeout)
    # 119 0 PortNo:2 NodeType:1 Protocol:1 Highest:2 Lowest:2 Nlen:2 Name Elen:2 Extra
    if len(reply) < 14 or reply[0] != PORT2_RESP or reply[1] != 0:
        return None                       # unknown, or an answer that is no PORT2_RESP
    port, node_type, _protocol, highest, lowest, nlen = struct.unpack_from(">HBBHHH", reply, 2)
    if len(reply) < 14 + nlen or port == 0:
        return None
    (elen,) = struct.unpack_from(">H", reply, 12 + nlen)
    extra = reply[14 + nlen:14 + nlen + elen]
    if len(extra) != elen:
        return None
    return Entry(port, extra == PYDIST_EXTRA, node_type, highest, lowest, extra)


_NAMES_LINE = re.compile(r"name (.+) at port (\d{1,5})")


def names(address: str = "127.0.0.1", timeout: float = 2.0) -> list[tuple[str, int]]:
    """``[(name, port), ...]`` registered on that host, like ``epmd -names``."""
    reply = _ask(address, bytes([NAMES_REQ]), timeout)
    rows = []
    for line in reply[4:].decode("utf-8", "replace").splitlines():
        match = _NAMES_LINE.fullmatch(line)
        if match and 0 < int(match[2]) < 65536:
            rows.append((match[1], int(match[2])))
    return rows
