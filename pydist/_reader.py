"""Reading a connection: by its reader thread, or by the process that waits on it.

A connection has one reader at a time, whoever holds ``peer.token``, and that reader
reads and delivers whole frames, in order. Usually it is the connection's reader
thread, blocked in ``recv``. But when a reader thread wakes a waiting process, the
process pays a thread hand-off, and on two cores a hand-off costs about as much as a
whole round trip of a plain blocking socket (PITFALLS: "Thread hand-offs cost
round-trip time"). So:

- After the reader thread hands a frame to a process that was waiting for just that
  (a reply to its call, a message to it in ``receive``), it opens a window of
  ``DIRECT_WINDOW`` seconds and stands back. A process that waits on the connection
  while the window is open reads it itself (``read_once``), and the kernel wakes it
  directly, as it wakes the one thread of a plain client. Every read of a frame for
  the reader itself renews the window.
- A process that reads a frame for others shuts the window and calls the reader
  thread back at once; when the window passes unused, the reader thread reads again.
  So a frame for anyone else waits at most ``DIRECT_WINDOW``.
- A caller waiting for a reply that does not read itself joins ``peer.sleepers`` and
  calls the reader thread back; while anyone is in that set, the reader thread does
  not stand back: no caller sleeps with nobody reading. (A process in ``receive``
  may wait for hours, so it does not join: were it counted, nobody else could read
  for itself.)
- The reader thread never takes the token without reading a frame.
- A process that reads polls its own wake-up too (``_mailbox.Proc.poll``), so a local
  message, a reply from elsewhere or its time limit still reach it.
"""

from __future__ import annotations

import os
import threading
import time

from . import _transport as wire
from ._console import console
from ._errors import BadRpc
from ._process import Pid, _table, spawn
from ._registry import add_watcher
from ._transport import CALL, REG_SEND, REPLY, SEND
from .rpc import _serve as _serve_rpc
from .rpc import _unpack

__all__ = ["Reading", "DIRECT_WINDOW"]

DIRECT_WINDOW = 0.005          # seconds the reader thread stands back for a waiting process


class Reading:
    """The reading half of ``_dist.Dist``."""

    # ------------------------------------------------------------ the reader thread
    def _read(self, peer) -> None:
        threading.current_thread().name = f"pydist-reader-{peer.name}"
        token = peer.token
        while True:
            wait = peer.direct_until - time.monotonic()
            if not peer.sleepers and (wait > 0 or token.locked()):
                # A waiting process reads for itself, or may soon: stand by (a process
                # that leaves others waiting calls us back).
                peer.standby.acquire(True, wait if wait > 0 else DIRECT_WINDOW)
                continue
            # Read now, even if a process renewed the window meanwhile: letting go
            # without reading could leave one that just failed to get the token
            # sleeping with nobody reading.
            token.acquire()
            try:
                calls, direct = self._take(peer)
            except (EOFError, OSError):
                token.release()
                break
            except Exception as exc:                # garbage from the other side
                token.release()
                self.log(f"dropped the connection to {peer.name}: undecodable data ({exc!r})")
                break
            if direct:
                peer.direct_until = peer.last_recv + DIRECT_WINDOW
            token.release()
            if calls and not self._serve_inline(peer, calls):
                return                    # another thread reads this connection now
        self._lost(peer)

    def _take(self, peer) -> tuple[list, bool]:
        """Read one frame and deliver what it carries. Returns the rpc calls it holds
        and whether it was one reply or message for a process that waited for it."""
        frame = peer.channel.recv()
        peer.last_recv = time.monotonic()
        if not frame:
            return [], False                      # a heartbeat tick
        items = wire.decode_frame(frame)          # ValueError: garbage
        if len(items) == 1:                       # the usual frame in a dialogue
            item = items[0]
            op = item[0]
            if op == SEND or op == REG_SEND:
                proc = (_table.procs if op == SEND else _table.names).get(item[1])
                if proc is None:
                    return [], False
                waited = proc.waiting
                proc.deliver(_message(item))
                if waited:
                    proc.direct_peer = peer
                return [], waited
            if op == REPLY:
                self.reply(item[1], item[2], item[3])
                return [], True
            if op == CALL:
                return [item], False
        calls, box, batch = [], None, []          # messages for one process go in at once
        for item in items:
            op = item[0]
            if op == wire.SEND or op == wire.REG_SEND:
                proc = (_table.procs if op == wire.SEND else _table.names).get(item[1])
                if proc is not box:
                    if batch:
                        box.deliver_many(batch)
                    box, batch = proc, []
                if proc is not None:
                    batch.append(_message(item))
                continue
            if batch:
                box.deliver_many(batch)
                box, batch = None, []
            if isinstance(item, wire.Undecodable):
                self.log(f"dropped a message from {peer.name}: {item.error}")
            elif op == wire.CALL:
                calls.append(item)
            elif op == wire.SYNC:                 # waits for quiet: never inline
                self.pool.submit(_serve_rpc, self, peer, item)
            else:
                self._dispatch(peer, item)
        if batch:
            box.deliver_many(batch)
        return calls, False

    def _serve_inline(self, peer, calls: list) -> bool:
        """Run rpc calls in the reader itself: no thread hand-off for a quick call.
        A call that waits (in receive, rpc.call) or runs past HAND_OFF gets another
        thread to read on (release_reader); returns whether this one still reads."""
        if len(calls) > 1:
            for item in calls[1:]:
                self.pool.submit(_serve_rpc, self, peer, item)
        _table.local.serving_peer = peer
        peer.serving_since = time.monotonic()
        try:
            _serve_rpc(self, peer, calls[0])
        finally:
            _table.local.serving_peer = None
            with self.lock:
                peer.serving_since = None
                moved, peer.reader_moved = peer.reader_moved, False
        return not moved

    def release_reader(self, peer) -> None:
        """The thread serving a call inline for ``peer`` is about to wait: read on elsewhere."""
        with self.lock:
            if peer.serving_since is None or peer.reader_moved:
                return
            peer.reader_moved = True
        self.pool.submit(self._read, peer)

    # ------------------------------------------------------------ a waiting process reads
    def read_once(self, peer, proc, remaining: float, reply: bool) -> bool:
        """Called by ``proc`` instead of sleeping: if the window is open and nobody
        reads ``peer``'s connection, wait up to ``remaining`` seconds (-1: no limit)
        for a frame there or a wake-up of its own, and deliver the frame. Returns
        True when the caller should look again, False when it should sleep as usual
        (the reader delivers). A process waiting for a ``reply`` from ``peer`` is then
        in ``peer.sleepers`` until it wakes."""
        token = peer.token
        if peer.lost:
            return False
        if peer.direct_until <= time.monotonic() or not token.acquire(False):
            if reply:                             # the reader thread must read for it
                peer.sleepers.add(proc)
                _call_back(peer)
            return False
        back = False                              # call the reader thread back?
        try:
            if proc.woken.acquire(False):         # something came meanwhile: look first
                return True
            channel = peer.channel
            # A caller with no time limit waits for nothing but this connection (its
            # reply comes that way, and so does its loss), so it blocks in recv, as the
            # floor does; but not the notebook's or prompt's process, which must wake
            # to print what other processes print meanwhile. Others poll beside their
            # wake-up.
            blocking = reply and remaining < 0 and proc is not _table.main_proc
            if not (blocking or channel.buffered()) and not proc.poll(channel.fd, remaining):
                return True                       # woken, or out of time
            calls, _ = self._take(peer)
            for item in calls:
                self.pool.submit(_serve_rpc, self, peer, item)
            if proc.woken.acquire(False):         # it was for us: read the next one too
                peer.direct_until = peer.last_recv + DIRECT_WINDOW
            else:                                 # for others (an rpc call, say)
                back = True
            return True
        except Exception as exc:                  # EOF, or garbage: drop the connection,
            if not isinstance(exc, (EOFError, OSError)):
                self.log(f"dropped the connection to {peer.name}: undecodable data "
                         f"({exc!r})")
            peer.channel.shutdown()               # the reader thread finds it lost
            back = True
            return False
        finally:
            token.release()
            if back or peer.sleepers:             # the reader thread reads for all
                peer.direct_until = 0.0
                _call_back(peer)

    # ------------------------------------------------------------ what arrives
    def _dispatch(self, peer, item: tuple) -> None:
        op = item[0]
        if op == wire.REPLY:
            self.reply(item[1], item[2], item[3])
        elif op == wire.IO:
            console.emit(item[2], item[4], item[3], item[5])
        elif op == wire.NODES:
            for name in item[1]:
                if name != self.name and name not in self.peers:
                    self.pool.submit(self.connect, name)
        elif op == wire.SPAWN:
            _, ref, caller, payload = item
            try:
                fun, args = _unpack(payload, self.name)
                answer = (True, spawn(fun, *args, group_leader=Pid(peer.name, caller)))
            except BadRpc as exc:
                answer = (False, exc)
            peer.channel.send(wire.encode_parts((wire.REPLY, ref, *answer)))
        elif op == wire.MONITOR:
            add_watcher(item[1], item[2], item[3])
        elif op == wire.DEMONITOR:
            with _table.lock:
                for proc in _table.procs.values():
                    proc.watchers.pop(item[1], None)
        elif op == wire.DOWN:
            _, ref, watcher, target, reason = item
            if peer.monitors.pop(ref, None) is not None:
                _table.down(watcher, ref, target, reason)
        elif op == wire.PING:
            peer.channel.send(wire.encode_parts((wire.REPLY, item[1], True, "pong")))
        elif op == wire.STOP:
            threading.Thread(target=_stop_and_exit, daemon=True).start()


def _call_back(peer) -> None:
    """Wake the reader thread of ``peer`` if it stands by."""
    try:
        peer.standby.release()
    except RuntimeError:                          # already called back
        pass


def _message(item: tuple):
    """The message of a SEND or REG_SEND item (see _transport)."""
    return item[2] if len(item) == 3 else (Pid(item[3], item[4]), item[2])


def _stop_and_exit() -> None:
    from ._node import Node
    Node.stop()
    os._exit(0)
