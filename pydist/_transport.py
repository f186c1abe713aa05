"""The wire: how two nodes authenticate, frame and encode what they send.

Built on ``multiprocess.connection``: its ``Listener`` accepts, its ``Connection``
frames bytes (4-byte big-endian length, then the payload) and its HMAC challenge
(``deliver_challenge``/``answer_challenge``) proves both sides hold the cookie.

A connection goes through three steps:

1. ``HELLO from to``: the connecting node names itself and the node it wants.
   Plain ASCII, at most ``MAX_HELLO`` bytes, checked against the node-name rules.
   This is all that is read before authentication, and it is never unpickled.
2. The cookie challenge, both ways.
3. The acceptor answers ``OK``, or ``DUP`` when the two nodes connected to each
   other at the same moment (the connection from the smaller name wins), or
   ``NAK <why>``.

After that, every frame carries one or more *items*: 1 byte tag, 4 byte length,
payload. Tag ``P`` is a C pickle (fast, for plain data and importable code); tag ``V``
is a cloudpickle pickle, used only for what C pickle cannot carry by value (lambdas,
closures, functions and classes defined in ``__main__``, e.g. a notebook). An empty
frame is a heartbeat tick.
"""

from __future__ import annotations

import io
import pickle
import socket
import ssl
import struct
import threading
import types

from multiprocess.connection import (
    AuthenticationError,
    Connection,
    answer_challenge,
    deliver_challenge,
)

from . import _names

__all__ = ["encode", "encode_parts", "decode_frame", "Undecodable", "client_handshake",
           "server_handshake", "SetupDeadline", "AuthenticationError", "TLSConnection",
           "open_connection", "accept"]

# ---- handshake
MAGIC = b"PYDIST1"
MAX_HELLO = 512
OK, DUP, NAK = b"OK", b"DUP", b"NAK"
HANDSHAKE_TIMEOUT = 3.0       # each read of the handshake: a peer that stalls is dropped
SETUP_TIME = 5.0              # the whole setup, every step together (Erlang: net_setuptime)
MAX_SETUPS = 64               # connections being set up at once; more evict the oldest

# ---- items after the handshake: (OP, ...) tuples. A request carries its reference
# and the caller's pid as plain numbers (the caller is always on the sending node):
# they cross the wire on every call, and plain ints cost the pickler nothing.
SEND = 1        # (SEND, pid_number, msg)          to a pid of the receiving node
REG_SEND = 2    # (REG_SEND, name, msg)            to a name registered there
                # ... or (op, to, payload, node, number) for msg = (Pid(node, number), payload)
NODES = 3       # (NODES, [node, ...])             mesh: the nodes I am connected to
CALL = 4        # (CALL, ref, caller, item(mod, fun, args), reply?)   rpc.call / rpc.cast
SPAWN = 5       # (SPAWN, ref, caller, item(fun, args))   Node.spawn; replied with the pid
REPLY = 6       # (REPLY, ref, ok, value)
IO = 7          # (IO, group_leader, stream, label, text, when)   what a process printed
MONITOR = 8     # (MONITOR, ref, watcher, target)  Process.monitor of a pid there
DEMONITOR = 9   # (DEMONITOR, ref, watcher, target)
DOWN = 10       # (DOWN, ref, watcher, target, reason)
SYNC = 11       # (SYNC, ref, caller, seconds)     "reply once your processes are idle"
STOP = 12       # (STOP,)                          peer.stop(): stop this node
PING = 13       # (PING, ref, caller)              Node.ping on a live connection
LINK = 14       # (LINK, from_pid, to_pid)         Process.link of a process there
UNLINK = 15     # (UNLINK, from_pid, to_pid)
EXIT = 16       # (EXIT, from_pid, to_pid, reason, link?)   an exit signal (_signals)
ALIAS_SEND = 17  # (ALIAS_SEND, alias_ref, msg)    a reply to GenServer.call's alias

TAG_PICKLE, TAG_VALUE = 0x50, 0x56    # b"P": plain pickle; b"V": code by value (cloudpickle)
_ITEM = struct.Struct("!BI")
MAX_FRAME = 256 * 1024 * 1024          # larger lengths are garbage: close the connection
MAX_ITEM = MAX_FRAME - 64              # so one item always fits in a frame
_FRAME = struct.Struct("!i")           # multiprocessing.connection's length prefix
_TICK = _FRAME.pack(0)                 # an empty frame: a heartbeat tick
BATCH_BYTES = 1 << 20                  # a frame carries queued items up to about this much
BATCH_ITEMS = 500                      # ... and at most this many (writev's IOV_MAX is 1024)
READ_BUFFER = 256 * 1024               # a reader reads ahead up to this much at once


# ---------------------------------------------------------------- encoding

_ATOMS = (str, bytes, bytearray, int, float, bool, complex, type(None))
PLAIN_CHECK = 32 * 1024                # pickles larger than this: look at the object first


def _plain(obj, budget: int = 1000) -> bool:
    """Whether ``obj`` is made of built-in data only (no functions, no classes), looking
    at no more than ``budget`` objects; ``False`` when unsure."""
    todo = [obj]
    while todo:
        budget -= 1
        if budget < 0:
            return False
        item = todo.pop()
        if isinstance(item, _ATOMS):
            continue
        if type(item) in (tuple, list, set, frozenset):
            todo.extend(item)
        elif type(item) is dict:
            todo.extend(item.keys())
            todo.extend(item.values())
        else:
            return False
    return True


def encode_parts(obj) -> tuple[bytes, bytes]:
    """One item as (header, payload): C pickle when it carries everything by value,
    else cloudpickle. Kept apart so a large payload is written without being copied."""
    try:
        data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
        # C pickle stores functions and classes by reference; one from __main__
        # (a notebook cell) would not be found on the other node, so use cloudpickle.
        # Searching a large pickle costs more than seeing that it is plain data.
        by_ref = (len(data) > PLAIN_CHECK and _plain(obj)) or b"__main__" not in data
        tag = TAG_PICKLE if by_ref else None
    except Exception:
        tag = None
    if tag is None:
        try:
            data = _by_value(obj)
        except Exception as exc:
            raise TypeError(_cannot_travel(obj, exc)) from None
        tag = TAG_VALUE
    if len(data) > MAX_ITEM:
        raise TypeError(f"cannot send a message of {len(data):,} bytes: the limit is "
                        f"{MAX_ITEM:,}; send it in chunks (notebook 07 shows how)")
    return _ITEM.pack(tag, len(data)), data


_value_pickler = None


def _by_value(obj) -> bytes:
    """cloudpickle, keeping each function's file name: a remote traceback then shows
    the lines of a script or module (cloudpickle writes "<dynamic-code>" instead)."""
    global _value_pickler
    if _value_pickler is None:
        import cloudpickle  # imported on first need
        reduce_code = getattr(cloudpickle.cloudpickle, "_code_reduce", None)

        def keep_filename(code):
            rebuild, args = reduce_code(code)
            return rebuild, tuple(code.co_filename if a == "<dynamic-code>" else a
                                  for a in args)

        class Pickler(cloudpickle.Pickler):
            if reduce_code is not None:       # read by the C pickler when it starts
                dispatch_table = {**cloudpickle.Pickler.dispatch_table,
                                  types.CodeType: keep_filename}
        _value_pickler = Pickler
    out = io.BytesIO()
    _value_pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return out.getvalue()


def _cannot_travel(obj, exc: Exception) -> str:
    """What cannot be pickled, named, with the fix (cloudpickle says which object)."""
    return (f"cannot send {type(obj).__name__} to another node: {exc}. Only data and "
            f"code travel: a lock, a socket, an open file or a thread stay on their node; "
            f"send what they hold (or make them on the other node) instead")


def encode(obj) -> bytes:
    """One item as bytes (for an item carried inside another one)."""
    header, data = encode_parts(obj)
    return header + data


class Undecodable:
    """Stands for an item that could not be unpickled here, e.g. a function whose
    module this node cannot import. The other items of its frame still count."""

    def __init__(self, error: Exception):
        self.error = error

    def __getitem__(self, index):          # so `item[0]` (the op) reads as "none"
        return None


def decode_frame(frame: bytes) -> list:
    """All items of one frame, in order; a broken frame raises ValueError."""
    items, view, i, end = [], memoryview(frame), 0, len(frame)
    if end > 5 and frame[0] == TAG_PICKLE and _ITEM.unpack_from(frame)[1] == end - 5:
        try:                                 # the usual frame: one plain item
            return [pickle.loads(view[5:])]
        except Exception as exc:
            return [Undecodable(exc)]
    while i < end:
        if i + 5 > end:
            raise ValueError("truncated item header")
        tag, size = _ITEM.unpack_from(frame, i)
        payload = view[i + 5:i + 5 + size]
        i += 5 + size
        if i > end:
            raise ValueError("truncated item")
        if tag not in (TAG_PICKLE, TAG_VALUE):
            raise ValueError(f"unknown item tag {tag}")
        try:
            items.append(pickle.loads(payload))    # cloudpickle's too: pickle loads them
        except Exception as exc:
            items.append(Undecodable(exc))
    return items


# ---------------------------------------------------------------- sockets

def _tune(sock: socket.socket) -> None:
    # Without TCP_NODELAY the handshake's small writes wait for delayed ACKs: 44 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def recv_timeout(conn: Connection, seconds: float) -> None:
    """Bound every read of ``conn`` (0 = no bound). ``Connection`` reads with
    ``os.read``, which a Python socket timeout cannot reach; SO_RCVTIMEO can."""
    sock = socket.socket(fileno=conn.fileno())
    try:
        sec = int(seconds)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                        struct.pack("ll", sec, int((seconds - sec) * 1e6)))
    finally:
        sock.detach()


class TLSConnection(Connection):
    """A ``Connection`` whose bytes go through a TLS ``_tls.Stream`` (so the cookie
    challenge runs encrypted); the stream does its TLS handshake first."""

    def __init__(self, stream):
        self.stream = stream
        super().__init__(stream.sock.fileno())

    def _send(self, buf, write=None):
        self.stream.send_all(bytes(buf))

    def _recv(self, size, read=None):
        buf, view = io.BytesIO(), memoryview(bytearray(size))
        got = 0
        while got < size:
            n = self.stream.recv_into(view[got:])
            if n == 0:
                raise EOFError if got == 0 else OSError("got end of file during message")
            got += n
        buf.write(view)
        return buf

    def _close(self, _close=None):
        self.stream.sock.close()


def open_connection(address: tuple[str, int], timeout: float, tls=None) -> Connection:
    """A connection to ``address``; with ``tls`` (a client SSLContext), a TLS one whose
    TLS handshake is the first step of ``client_handshake``."""
    sock = socket.create_connection(address, timeout=timeout)
    _tune(sock)
    sock.settimeout(None)
    return _wrap(sock, tls, server_side=False)


def accept(listening: socket.socket, tls=None) -> Connection:
    """The next connection to ``listening`` (a server SSLContext for ``tls``)."""
    sock, _ = listening.accept()
    sock.setblocking(True)
    _tune(sock)
    return _wrap(sock, tls, server_side=True)


def _wrap(sock: socket.socket, tls, server_side: bool) -> Connection:
    if tls is None:
        return Connection(sock.detach())
    from ._tls import Stream
    return TLSConnection(Stream(sock, tls, server_side))


def _tls_handshake(conn: Connection) -> None:
    if isinstance(conn, TLSConnection):
        try:
            conn.stream.handshake()
        except ssl.SSLError as exc:
            raise ValueError(f"TLS handshake failed ({exc.reason or exc}): is the other "
                             f"node using the same --tls folder?") from None


class SetupDeadline:
    """Shut ``conn`` down if its setup is not over within ``seconds``: each read has
    its own limit, but a peer that drips one byte at a time could stretch the whole
    for ever. Use as ``with SetupDeadline(conn, SETUP_TIME): <the steps>``; leaving
    the block ends the watch, before anyone may close ``conn``."""

    def __init__(self, conn: Connection, seconds: float):
        self.conn, self.lock, self.over = conn, threading.Lock(), False
        self.timer = threading.Timer(seconds, self._expire)
        self.timer.daemon = True

    def __enter__(self) -> "SetupDeadline":
        self.timer.start()
        return self

    def _expire(self) -> None:
        with self.lock:
            if not self.over:
                _shutdown(self.conn)

    def __exit__(self, *exc) -> None:
        with self.lock:
            self.over = True
        self.timer.cancel()


def _shutdown(conn: Connection) -> None:
    try:
        sock = socket.socket(fileno=conn.fileno())
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.detach()


def client_handshake(conn: Connection, me: str, target: str, cookie: bytes) -> bytes:
    """Returns OK, DUP or NAK...; raises AuthenticationError if the cookies differ."""
    recv_timeout(conn, HANDSHAKE_TIMEOUT)
    _tls_handshake(conn)
    conn.send_bytes(b"%s %s %s" % (MAGIC, me.encode(), target.encode()))
    answer_challenge(conn, cookie)
    deliver_challenge(conn, cookie)
    status = conn.recv_bytes(MAX_HELLO)
    recv_timeout(conn, 0)
    return status


def read_hello(conn: Connection) -> tuple[str, str]:
    """Step 1 on the accepting side: who is calling, and whom do they want."""
    recv_timeout(conn, HANDSHAKE_TIMEOUT)
    _tls_handshake(conn)
    hello = conn.recv_bytes(MAX_HELLO)
    words = hello.split(b" ")
    if len(words) != 3 or words[0] != MAGIC:
        raise ValueError("not a pydist node (garbage, or another protocol)")
    try:
        src, dst = (_names.parse(w.decode("ascii")).full for w in words[1:])
    except (UnicodeDecodeError, ValueError):
        raise ValueError("malformed node name in the greeting") from None
    return src, dst


def server_handshake(conn: Connection, cookie: bytes) -> None:
    """Step 2 on the accepting side; raises AuthenticationError on a wrong cookie."""
    deliver_challenge(conn, cookie)
    answer_challenge(conn, cookie)
    recv_timeout(conn, 0)
