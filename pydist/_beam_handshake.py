"""Erlang's handshake: how a pydist node and a BEAM node prove they share the cookie.

Erlang's twin is ``dist_util.erl``; this is its version 6 (OTP 23 and later), written
as its sequence of named steps. Every message is a 2-byte length and a tag byte:

    dialling node A                              accepting node B
    send_name        'N' flags creation name  ─▶
                                               ◀─  's' status ("ok", "nok", ...)
                                               ◀─  'N' flags challenge creation name
    send_challenge_reply  'r' challenge digest ─▶
                                               ◀─  'a' digest
    digest = MD5(cookie ++ the other side's challenge as decimal text)

Nothing here is a term: only fixed fields and a node name, checked by ``_names``.
Each read has ``HANDSHAKE_TIMEOUT``; the caller bounds the whole with SetupDeadline.
After the last step both sides speak in 4-byte frames (see ``_beam``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct

from . import _names
from ._transport import HANDSHAKE_TIMEOUT, AuthenticationError, recv_timeout

__all__ = ["FLAGS", "dial", "accept", "is_erlang", "Handshake"]

# ---- distribution flags (dist.hrl); OTP 26+ refuses a node without UNLINK_ID and V4_NC,
# OTP 25 one without HANDSHAKE_23, BIG_CREATION or MAP_TAG (../shared/ERLANG_DIST.md).
PUBLISHED, EXTENDED_REFERENCES, DIST_MONITOR, FUN_TAGS = 0x1, 0x4, 0x8, 0x10
DIST_MONITOR_NAME, NEW_FUN_TAGS, EXTENDED_PIDS_PORTS = 0x20, 0x80, 0x100
EXPORT_PTR_TAG, BIT_BINARIES, NEW_FLOATS, UTF8_ATOMS = 0x200, 0x400, 0x800, 0x10000
MAP_TAG, BIG_CREATION, HANDSHAKE_23, UNLINK_ID = 0x20000, 0x40000, 0x1000000, 0x2000000
FRAGMENTS, SPAWN, V4_NC, ALIAS = 0x800000, 1 << 32, 1 << 34, 1 << 35  # FRAGMENTS: see _fragments
MANDATORY_25_DIGEST = 0x4000000      # dist.hrl's value, not the documentation's 1 bsl 36
FLAGS = (PUBLISHED | EXTENDED_REFERENCES | DIST_MONITOR | FUN_TAGS | DIST_MONITOR_NAME
         | NEW_FUN_TAGS | EXTENDED_PIDS_PORTS | EXPORT_PTR_TAG | BIT_BINARIES | NEW_FLOATS
         | UTF8_ATOMS | MAP_TAG | BIG_CREATION | HANDSHAKE_23 | UNLINK_ID | SPAWN | V4_NC
         | FRAGMENTS | ALIAS)
NEEDED = EXTENDED_REFERENCES | EXTENDED_PIDS_PORTS | UTF8_ATOMS | MAP_TAG | BIG_CREATION \
    | HANDSHAKE_23 | NEW_FLOATS      # what we need from the other side's terms

MAX_MESSAGE = 1024             # a handshake message is a few fields and a node name
_NAME = struct.Struct("!cQI")          # 'N', flags, creation              (send_name)
_CHALLENGE = struct.Struct("!cQII")    # 'N', flags, challenge, creation   (send_challenge)
_REPLY = struct.Struct("!cI16s")       # 'r', challenge, digest
_ACK = struct.Struct("!c16s")          # 'a', digest


class Handshake:
    """What a finished handshake tells about the other node."""

    def __init__(self, name: str, flags: int, creation: int):
        self.name, self.flags, self.creation = name, flags, creation


def is_erlang(first: bytes) -> bool:
    """Whether the first bytes of a connection are Erlang's send_name: a 2-byte length,
    then 'N'. A pydist greeting starts with a 4-byte length whose third byte is 0 or 1."""
    return len(first) >= 3 and first[2:3] == b"N"


def digest(cookie: bytes, challenge: int) -> bytes:
    return hashlib.md5(cookie + str(challenge).encode()).digest()


# ---------------------------------------------------------------- the two sides

def dial(conn, me: str, creation: int, target: str, cookie: bytes) -> Handshake:
    """The dialling side's steps. Raises AuthenticationError (wrong cookie),
    ConnectionRefusedError (the other node said no) or ValueError (garbage)."""
    fd = conn.fileno()
    recv_timeout(conn, HANDSHAKE_TIMEOUT)
    # step 1: send_name
    _send(fd, _NAME.pack(b"N", FLAGS, creation) + _name_field(me))
    # step 2: recv_status
    status = _recv(fd)
    if status[:1] != b"s":
        raise ValueError("no status from the other node")
    status = status[1:]
    if status == b"alive":                # it holds an older connection from us: stale,
        _send(fd, b"strue")               # since we are dialling; it drops that one
    elif status == b"nok":                # it is dialling us too, and its connection wins
        raise ConnectionRefusedError(f"{target} is connecting to us at the same moment")
    elif status not in (b"ok", b"ok_simultaneous"):
        raise ValueError(f"it refused the connection ({status.decode(errors='replace')})")
    # step 3: recv_challenge
    other = _challenge(_recv(fd))
    if other.name != target:
        raise ValueError(f"it is {other.name}, not {target}")
    # step 4: send_challenge_reply
    mine = secrets.randbits(32)
    _send(fd, _REPLY.pack(b"r", mine, digest(cookie, other.challenge)))
    # step 5: recv_challenge_ack (a BEAM node that dislikes our digest just closes)
    try:
        ack = _recv(fd)
    except EOFError:
        raise AuthenticationError(f"{target} closed the connection at our cookie") from None
    if len(ack) != _ACK.size or ack[:1] != b"a":
        raise AuthenticationError(f"{target} refused our cookie")
    if not secrets.compare_digest(_ACK.unpack(ack)[1], digest(cookie, mine)):
        raise AuthenticationError(f"{target} does not know our cookie")
    recv_timeout(conn, 0)
    return Handshake(other.name, other.flags, other.creation)


def accept(conn, me: str, creation: int, cookie: bytes, may_connect,
           replace) -> Handshake | None:
    """The accepting side's steps. ``may_connect(name, creation)`` answers "ok", "nok"
    (we are dialling it too and our connection wins, or we are connected to this very
    run of it already) or "alive" (we hold a connection from an earlier run of it: if it
    says that one is stale, ``replace(name)`` drops it). Returns None when the
    connection is not to be; raises AuthenticationError or ValueError."""
    fd = conn.fileno()
    recv_timeout(conn, HANDSHAKE_TIMEOUT)
    # step 1: recv_name
    hello = _recv(fd)
    if len(hello) < _NAME.size + 2 or hello[:1] != b"N":
        raise ValueError("not a version 6 send_name (Erlang/OTP 23 or later is needed)")
    _, flags, their_creation = _NAME.unpack_from(hello)
    name = _name_at(hello, _NAME.size)
    if not _enough(flags):
        _send(fd, b"snot_allowed")
        raise ValueError(f"{name} lacks distribution flags this node needs")
    # step 2: send_status (and, for "alive", recv_status: is our old connection stale?)
    status = may_connect(name, their_creation)
    _send(fd, b"s" + status.encode())
    if status == "nok":
        return None
    if status == "alive":
        if _recv(fd) != b"strue":
            return None
        replace(name)
    # step 3: send_challenge
    mine = secrets.randbits(32)
    _send(fd, _CHALLENGE.pack(b"N", FLAGS, mine, creation) + _name_field(me))
    # step 4: recv_challenge_reply
    reply = _recv(fd)
    if len(reply) != _REPLY.size or reply[:1] != b"r":
        raise ValueError("no challenge reply")
    _, theirs, answer = _REPLY.unpack(reply)
    if not secrets.compare_digest(answer, digest(cookie, mine)):
        raise AuthenticationError(f"Connection attempt from node {name} rejected. "
                                  f"Invalid challenge reply.")
    # step 5: send_challenge_ack
    _send(fd, _ACK.pack(b"a", digest(cookie, theirs)))
    recv_timeout(conn, 0)
    return Handshake(name, flags, their_creation)


# ---------------------------------------------------------------- fields

class _Challenge:
    def __init__(self, data: bytes):
        if len(data) < _CHALLENGE.size + 2 or data[:1] != b"N":
            raise ValueError("not a version 6 challenge (Erlang/OTP 23 or later is needed)")
        _, self.flags, self.challenge, self.creation = _CHALLENGE.unpack_from(data)
        self.name = _name_at(data, _CHALLENGE.size)
        if not _enough(self.flags):
            raise ValueError(f"{self.name} lacks distribution flags this node needs")


def _enough(flags: int) -> bool:
    """Whether the other node can do what we need; OTP 25+ may send MANDATORY_25_DIGEST
    for all of it (dist_util.erl)."""
    return flags & NEEDED == NEEDED or bool(flags & MANDATORY_25_DIGEST)


def _challenge(data: bytes) -> _Challenge:
    return _Challenge(data)


def _name_field(name: str) -> bytes:
    raw = name.encode()
    return struct.pack("!H", len(raw)) + raw


def _name_at(data: bytes, offset: int) -> str:
    size, = struct.unpack_from("!H", data, offset)
    raw = data[offset + 2:offset + 2 + size]
    if len(raw) != size or offset + 2 + size != len(data):
        raise ValueError("malformed node name in the handshake")
    try:
        return _names.parse(raw.decode("ascii")).full
    except (UnicodeDecodeError, ValueError):
        raise ValueError("malformed node name in the handshake") from None


def _send(fd: int, body: bytes) -> None:
    data = struct.pack("!H", len(body)) + body
    while data:
        data = data[os.write(fd, data):]


def _recv(fd: int) -> bytes:
    size, = struct.unpack("!H", _exactly(fd, 2))
    if not 0 < size <= MAX_MESSAGE:
        raise ValueError(f"handshake message of {size} bytes")
    return _exactly(fd, size)


def _exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        try:
            chunk = os.read(fd, size - len(data))
        except BlockingIOError:                # SO_RCVTIMEO expired
            raise TimeoutError("the other node stalled in the handshake") from None
        if not chunk:
            raise EOFError("the other node closed the connection in the handshake")
        data += chunk
    return data
