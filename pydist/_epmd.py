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
pydist node from a BEAM one. This module is the protocol and the client side (what a
node asks); the mapper itself is ``_epmd_server``.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import time
from typing import NamedTuple

from ._errors import PydistError

__all__ = ["epmd_port", "ensure_registered", "register", "lookup", "names",
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


# ---------------------------------------------------------------- both sides

def _node_fields(data: bytes) -> tuple[int, int, int, int, bytes, bytes] | None:
    """(port, node type, highest, lowest, name, extra) from the fields ALIVE2_REQ and
    PORT2_RESP share, ``PortNo:2 NodeType:1 Protocol:1 Highest:2 Lowest:2 Nlen:2 Name
    Elen:2 Extra``; None unless their lengths add up exactly and each is in bounds."""
    if len(data) < 12:
        return None
    port, node_type, _protocol, highest, lowest, nlen = struct.unpack_from(">HBBHHH", data)
    elen = struct.unpack_from(">H", data, 10 + nlen)[0] if len(data) >= 12 + nlen else -1
    if len(data) != 12 + nlen + elen or not 0 < nlen <= MAX_NAME or elen > MAX_NAME \
            or port == 0:
        return None
    return port, node_type, highest, lowest, data[10:10 + nlen], data[12 + nlen:]


def _read_exactly(conn: socket.socket, size: int, deadline: float) -> bytes:
    """``size`` bytes, all of them before ``deadline`` (a client dripping one byte at a
    time is cut off as surely as a silent one); fewer only if the client leaves."""
    data = b""
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ValueError("too slow: the message was not complete in time")
        conn.settimeout(left)
        try:
            chunk = conn.recv(size - len(data))
        except socket.timeout:
            raise ValueError("too slow: the message was not complete in time") from None
        if not chunk:
            break
        data += chunk
    return data


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


class _NoMapper(_NoAnswer):       # nothing listens there: start one
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


def _start_mapper(address: str, timeout: float = START_TIMEOUT) -> None:
    """Start a daemon mapper on ``address`` and wait until it accepts connections."""
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
    except ConnectionRefusedError:
        raise _NoMapper(f"no port mapper runs at {where}") from None
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
    """Register, first starting a daemon mapper if none runs (as ``erl`` starts epmd);
    retried, because a mapper that has just decided to exit (idle) may still accept
    a connection and then drop it."""
    for attempt in range(3):
        try:
            return register(address, name, port)
        except _NoMapper:
            _start_mapper(address)
        except _NoAnswer:
            if attempt == 2:
                raise
            time.sleep(0.1)
    return register(address, name, port)


def lookup(address: str, name: str, timeout: float = 2.0) -> Entry | None:
    """What the mapper of that host knows of ``name`` (PORT_PLEASE2_REQ), or ``None``;
    ``OSError`` if no mapper runs there."""
    reply = _ask(address, bytes([PORT_PLEASE2_REQ]) + name.encode(), timeout)
    # 119 0, then the fields of the node's ALIVE2_REQ; 119 1 if the name is unknown.
    fields = _node_fields(reply[2:]) if reply[:2] == bytes([PORT2_RESP, 0]) else None
    if fields is None:
        return None                       # unknown, or an answer that is no PORT2_RESP
    port, node_type, highest, lowest, _, extra = fields
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
