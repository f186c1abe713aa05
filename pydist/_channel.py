"""One authenticated connection, as the node uses it: frames in, frames out.

Erlang's twin is the distribution port of a connection. Its reader is the node's
reader thread (``_reader``); its writers are every thread that sends. See ``Channel``
for how writes are combined, and ``_transport`` for what a frame carries.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections import deque

from multiprocess.connection import Connection

from ._transport import (
    _FRAME,
    _TICK,
    BATCH_BYTES,
    BATCH_ITEMS,
    MAX_FRAME,
    READ_BUFFER,
    TLSConnection,
    _shutdown,
)

__all__ = ["Channel", "flush_waiting"]

_BEAM_FRAME = struct.Struct("!I")    # OTP's {packet, 4}: unsigned, up to 4 GiB - 1
STREAM_ITEM = 64 * 1024              # larger items are written at once, never queued

# The channel each thread wrote to last since it last waited (see Channel.send).
_streak = threading.local()


def flush_waiting(guard=None) -> None:
    """The calling thread is about to wait (receive, a reply, Process.sleep, the pool):
    write what it left queued now, and its next send is a first again. ``guard``: a
    spawned process's (see _process.shielded), held while it writes."""
    channel = _streak.__dict__.pop("last", None)
    if channel is not None and channel._pending:
        if guard is None:
            channel._flush()
        else:
            with guard:
                channel._flush()


class Channel:
    """One authenticated connection: many threads write it, one thread reads it.

    Writes are combined, never waited for, and no clock decides when (Erlang's port
    queue; a timer would make every message wait):

    - a thread's first send since it last waited is written at once, so a request
      and its reply pay no thread hand-off;
    - a thread that sends again before it waits is streaming: its items join the
      queue. It writes the queue itself, in one writev, when the queue holds
      ``BATCH_ITEMS`` or when it waits next (``flush_waiting``); meanwhile the
      connection's writer thread, woken once, writes whatever is queued when it runs,
      so an item never waits for its sender to wait;
    - a sender that finds another one writing leaves its item queued, and the writing
      thread writes everything queued, in order, before it lets go.

    ``send_later`` queues an item for the writer thread, for the reader, which must
    never block on a full socket (it answers pings); ``tick`` writes a heartbeat
    without blocking. Frames are written with writev, so a large message is never
    copied.
    """

    def __init__(self, conn: Connection, name: str = "?", framed: bool = True):
        # framed: items share a frame (pydist's own peers); else each item is a whole
        # frame already, length included (a BEAM node's: one message per frame).
        self.conn, self.name, self.framed = conn, name, framed
        self.fd = conn.fileno()
        self.tls = conn.stream if isinstance(conn, TLSConnection) else None
        self._pending: deque[tuple[bytes, bytes]] = deque()
        self._write = threading.Lock()
        self._wake = threading.Condition(threading.Lock())
        self._writer: threading.Thread | None = None
        self._kicked = False                     # the writer thread is woken already
        self.last_write = time.monotonic()
        self.broken = False
        self._rbuf = bytearray(READ_BUFFER)      # read-ahead: bytes [_rpos, _rend) unread
        self._rview = memoryview(self._rbuf)
        self._rpos = self._rend = 0
        # A BEAM node's frames have no limit but their 4-byte length (OTP sets none); a
        # pydist peer never writes one over MAX_FRAME, so a larger length is garbage.
        self._len = _FRAME if framed else _BEAM_FRAME
        self.max_frame = MAX_FRAME if framed else 0xFFFFFFFF
        self.last_read = time.monotonic()
        # Set by _ticks: the silence allowed, whose figure it is, how often we tick.
        self.silence, self.silence_why, self.tick_every = 0.0, "", float("inf")

    def send(self, parts: tuple[bytes, bytes]) -> None:
        """Write one item now, or queue it (see the class)."""
        streak = _streak.__dict__
        pending = self._pending
        if streak.get("last") is self and len(parts[1]) < STREAM_ITEM:   # streaming
            pending.append(parts)
            if len(pending) >= BATCH_ITEMS:
                self._flush(wait=True)
            elif not self._kicked:
                self._kick()
            return
        streak["last"] = self
        if not pending and self._write.acquire(False):
            try:                             # the common case: one call, no queue
                self._write_frame(parts, len(parts[0]) + len(parts[1]))
            finally:
                self._write.release()
        else:
            pending.append(parts)
        if pending:                          # what others queued meanwhile (or ours)
            self._flush(wait=len(pending) >= BATCH_ITEMS)

    def tick(self) -> None:
        """A heartbeat: an empty frame. Never blocks the heartbeat thread: skipped when
        another thread is writing (what it writes is a sign of life too) or when the
        socket is full (the other side has our data to read)."""
        if self.tls is not None:            # ticks are encrypted too: the writer thread's
            self.send_later((b"", b""))
            return
        if self._pending or not self._write.acquire(False):
            return
        try:
            if self.broken:
                return
            try:                             # closed meanwhile (close does not wait for us)
                sock = socket.socket(fileno=self.fd)
            except OSError:
                return
            try:
                sent = sock.send(_TICK, socket.MSG_DONTWAIT)
            except OSError:                  # full (or failing: the reader will see it)
                sent = 0
            finally:
                sock.detach()
            if 0 < sent < len(_TICK):        # never half a frame: finish it
                os.write(self.fd, _TICK[sent:])
            if sent:
                self.last_write = time.monotonic()
        finally:
            self._write.release()
        if self._pending:
            self._flush()

    def send_later(self, parts: tuple[bytes, bytes]) -> None:
        """Queue one item for the writer thread, for a thread that must never block."""
        self._pending.append(parts)
        if not self._kicked:
            self._kick()

    def _kick(self) -> None:
        self._kicked = True
        with self._wake:
            if self._writer is None:
                self._writer = threading.Thread(target=self._writer_loop, daemon=True,
                                                name=f"pydist-writer-{self.name}")
                self._writer.start()
            self._wake.notify()

    def _flush(self, wait: bool = False) -> None:
        # Whoever holds the lock writes everything queued; one that finds the lock
        # taken leaves its item for the holder, which checks again after release.
        # With a batch queued already (``wait``), a sender waits for the lock instead,
        # as a write waits for a full socket: the queue never outgrows the reader.
        while self._pending and not self.broken:
            if not self._write.acquire(wait, 1.0 if wait else -1):
                if wait:
                    continue                 # a write blocked on a full socket: wait on
                return
            try:
                while self._pending:
                    self._drain()
            finally:
                self._write.release()
            wait = False

    def _writer_loop(self) -> None:
        while not self.broken:
            with self._wake:
                while not self._pending and not self.broken:
                    # Reset, then look again: a sender that queued before the reset is
                    # seen here, one after it finds _kicked False and notifies.
                    self._kicked = False
                    if self._pending:
                        break
                    self._wake.wait()
            if not self._write.acquire(True, 1.0):   # a sender holds it: it writes ours
                continue
            try:
                while self._pending:
                    self._drain()
            finally:
                self._write.release()
            self._flush()

    def _drain(self) -> None:
        pending, buffers, size = self._pending, [], 0
        while pending and size < BATCH_BYTES and len(buffers) < 2 * BATCH_ITEMS:
            header, data = pending.popleft()
            buffers += (header, data)
            size += len(header) + len(data)
        self._write_frame(buffers, size)

    def _write_frame(self, buffers: list | tuple, size: int) -> None:
        if self.broken:
            self._pending.clear()
            return
        self.last_write = time.monotonic()
        head = _FRAME.pack(size) if self.framed else b""
        try:
            if self.tls is not None:
                self.tls.send_all(b"".join((head, *buffers)))
                return
            if size < 65536:                 # small: join them, cheaper than a gather
                frame = b"".join((head, *buffers))
                written = os.write(self.fd, frame)
                if written == len(frame):
                    return
                views = [memoryview(frame)[written:]]
            else:                            # large: gather, never copy
                views = [memoryview(head), *map(memoryview, buffers)]
            while views:
                written = os.writev(self.fd, views)
                while views and written >= len(views[0]):
                    written -= len(views.pop(0))
                if written:
                    views[0] = views[0][written:]
        except OSError:               # the reader sees the end and reports nodedown
            self.broken = True
            self._pending.clear()
            self.shutdown()

    def recv(self) -> memoryview:
        """The next frame, read ahead in large chunks: one system call usually brings
        a frame's length and its payload, or many small frames at once. The view is
        valid until the next call (the reader decodes a frame before it reads on)."""
        pos, end = self._rpos, self._rend
        if pos == end:                       # the usual case in a dialogue: read now
            self._rpos = self._rend = pos = 0
            self._fill()
            end = self._rend
        if end - pos >= 4:
            size, = self._len.unpack_from(self._rbuf, pos)
            if 0 <= size <= end - pos - 4:
                self._rpos = pos + 4 + size
                return self._rview[pos + 4:pos + 4 + size]
        return self._recv_slow()

    def buffered(self) -> bool:
        """Whether recv will not block: a whole frame (or a bad length) is read ahead."""
        left = self._rend - self._rpos
        return left >= 4 and self._len.unpack_from(self._rbuf, self._rpos)[0] <= left - 4

    def _recv_slow(self) -> memoryview:
        buf, view = self._rbuf, self._rview
        if self._rpos:                       # move what is left to the front
            left = self._rend - self._rpos
            buf[:left] = buf[self._rpos:self._rend]
            self._rpos, self._rend = 0, left
        while self._rend < 4:
            self._fill()
        size, = self._len.unpack_from(buf, 0)
        if not 0 <= size <= self.max_frame:
            raise OSError(f"bad frame length {size}")
        if 4 + size <= len(buf):
            while self._rend < 4 + size:
                self._fill()
            self._rpos = 4 + size
            return view[4:4 + size]
        # Larger than the read buffer: a buffer of its own that grows with the bytes
        # that arrive, a read buffer at a time, never with the length claimed (a 4-byte
        # header claiming 4 GiB costs nothing until the bytes come).
        frame = bytearray(view[4:self._rend])
        self._rpos = self._rend = 0
        while len(frame) < size:
            n = self._read_into(view[:min(len(buf), size - len(frame))])
            if n == 0:
                raise EOFError("connection closed")
            self.last_read = time.monotonic()
            frame += view[:n]
        return memoryview(frame)

    def _read_into(self, view: memoryview) -> int:
        return os.readv(self.fd, [view]) if self.tls is None else self.tls.recv_into(view)

    def _fill(self) -> None:
        n = self._read_into(self._rview[self._rend:])
        if n == 0:
            raise EOFError("connection closed")
        self.last_read = time.monotonic()
        self._rend += n

    def flush(self) -> None:
        """Write what is queued now, waiting for the write lock as a full batch does:
        before a shutdown, which would drop it (a message sent before a disconnect
        is written, as on the BEAM)."""
        self._flush(wait=True)

    def shutdown(self) -> None:
        """Wake a reader or writer blocked on this connection (close() alone does not)."""
        _shutdown(self.conn)

    def close(self) -> None:
        self.broken = True
        with self._wake:
            self._wake.notify()
        self.shutdown()                     # a blocked write fails now, and lets go
        held = self._write.acquire(True, 1.0)   # no write may reach a reused fd number
        try:
            self.conn.close()
        except OSError:
            pass
        finally:
            if held:
                self._write.release()
