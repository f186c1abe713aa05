"""Reading a connection: one reader thread per connected node, that only delivers.

Erlang's twin is the distribution controller of a connection: it takes what arrives
and puts each message in its process's mailbox; it runs no user code. So here:

    node a                                            node b
    process ─ send / rpc.call ─▶ Channel.send ─ socket ─▶ reader thread of "a"
                                                           │ message ─▶ mailbox, wake it
                                                           │ reply   ─▶ its caller, wake it
                                                           │ call    ─▶ call pool (_pool)
                                                           │ control ─▶ handled at once
    caller ◀─ reader thread of "b" ◀─ socket ◀─ Channel.send ◀─ the pool thread's reply

- Each connection has exactly one reader, for its whole life: a thread that blocks
  in ``recv``, decodes each frame and hands each item to whom it is for. It never
  runs an rpc call, never waits for a process and never blocks on a write (what it
  answers itself, a ping, goes through ``Channel.send_later``). So no conversation
  can hold up another, and every frame, heartbeats included, is read as it comes.
- A receive that hears nothing, not even a heartbeat tick, for ``heartbeat`` seconds
  ends the connection: the other node is frozen or cut off.
- Calls (``rpc.call``/``cast``, ``Node.spawn``, the end-of-cell SYNC) run on the
  node's call pool; each sends its own reply.
- A process waiting for a message or a reply sleeps on its own lock
  (``_mailbox.Proc.sleep``) and the reader wakes it, once for all the messages it
  has read for that process; nothing else ever waits for it.
"""

from __future__ import annotations

import os
import threading
import time

from . import _signals
from . import _transport as wire
from ._calls import serve
from ._console import console
from ._etf_decode import BadMessage
from ._fragments import Reassembly
from ._process import Pid, _table, alias_send, item_message
from ._registry import add_watcher
from ._transport import REG_SEND, REPLY, SEND

__all__ = ["Reading"]


class Reading:
    """The reading half of ``_dist.Dist``: the reader thread's loop and what it does
    with each item that arrives."""

    def _read(self, peer) -> None:
        """The reader thread of ``peer``'s connection, until the connection ends."""
        channel, batch, beam = peer.channel, _Batch(), peer.beam
        fragments = peer.fragments = Reassembly(self.name, self.creation)  # (_fragments)
        _table.local.reader = True                    # what it sends goes via send_later
        try:
            while True:
                try:
                    frame = channel.recv()
                except (BlockingIOError, TimeoutError):   # the receive time limit
                    left = channel.silence - (time.monotonic() - channel.last_read)
                    if left <= 0.01:
                        raise
                    wire.recv_timeout(channel.conn, left)  # the limit grew meanwhile
                    continue
                if not frame:                         # an empty frame is a heartbeat tick
                    pass
                elif beam is None:
                    self._deliver(peer, wire.decode_frame(frame), batch)
                else:                                 # a BEAM node's (see _beam)
                    whole = fragments.feed(frame)
                    if whole is None:                 # a fragment: more to come
                        continue
                    try:
                        beam.deliver(peer, *whole, batch)
                    except BadMessage as exc:         # its frame ends where it said:
                        self.log(f"refused a message from {peer.name}, connection kept: "
                                 f"{str(exc)[:300]}")  # the next one is read as usual
                if not channel.buffered():            # all read so far is delivered
                    batch.flush()
        except (BlockingIOError, TimeoutError):       # silent for channel.silence s
            self.log(f"node {peer.name} is not responding (silent for "
                     f"{channel.silence:g} s; {channel.silence_why}): connection removed")
        except (EOFError, OSError):
            pass                                      # closed, reset, or shut down by us
        except Exception as exc:                      # garbage from the other side
            self.log(f"dropped the connection to {peer.name}: undecodable data "
                     f"({type(exc).__name__}: {str(exc)[:300]})")    # bounded: garbage is long
        batch.flush()
        self._lost(peer)

    def _deliver(self, peer, items: list, batch: "_Batch") -> None:
        """Hand each item of one frame to whom it is for, in order. Messages wait in
        ``batch`` while they go to one process (one wake-up for many); anything else
        lets them through first, so a DOWN never overtakes the messages before it."""
        for item in items:
            op = item[0]
            if op == SEND or op == REG_SEND:
                proc = (_table.procs if op == SEND else _table.names).get(item[1])
                if proc is not None:                  # a dead pid: dropped, as in Erlang
                    batch.add(proc, item_message(item))
                continue
            batch.flush()
            if op == REPLY:
                self.reply(item[1], item[2], item[3])
            elif op == wire.CALL or op == wire.SPAWN or op == wire.SYNC:
                self.pool.submit(serve, self, peer, item)
            elif isinstance(item, wire.Undecodable):
                self.log(f"dropped a message from {peer.name}: {item.error}")
            else:
                self._control(peer, item)

    def _control(self, peer, item: tuple) -> None:
        """What the node itself answers; quick, and never blocks the reader."""
        op = item[0]
        if op == wire.IO:
            console.emit(item[2], item[4], item[3], item[5])
        elif op == wire.NODES:                        # the mesh: connect to what it knows
            for name in item[1]:
                if name != self.name and name not in self.peers:
                    threading.Thread(target=self.connect, args=(name,), daemon=True,
                                     name=f"pydist-connect-{name}").start()
        elif op == wire.MONITOR:
            self.watch(peer, *item[1:])
        elif op == wire.DEMONITOR:
            with _table.lock:
                for proc in _table.procs.values():
                    proc.watchers.pop(item[1], None)
        elif op == wire.DOWN:
            _, ref, watcher, target, reason = item
            if peer.monitors.pop(ref, None) is not None:
                _table.down(watcher, ref, target, reason)
        elif op == wire.EXIT:
            _signals.signal(item[2], item[1], item[3], link=item[4])
        elif op == wire.LINK:
            _signals.remote_link(peer, item[1], item[2])
        elif op == wire.UNLINK:
            proc = _table.lookup(item[2])
            if proc is not None:
                proc.links.discard(item[1])
        elif op == wire.ALIAS_SEND:
            alias_send(item[1], item[2])
        elif op == wire.PING:
            peer.channel.send_later(wire.encode_parts((REPLY, item[1], True, "pong")))
        elif op == wire.STOP:                         # peer.stop() from our starter
            threading.Thread(target=self._stop_and_exit, daemon=True).start()

    def watch(self, peer, ref, watcher: Pid, target) -> None:
        """A monitor (or a BEAM node's link) on a local process, asked by ``peer``. If
        the process is gone, the DOWN noproc goes through the writer thread: the reader
        never blocks on a write."""
        if not add_watcher(ref, watcher, target, notify=False):
            peer.channel.send_later(peer.encode((wire.DOWN, ref, watcher, target, "noproc")))

    def _stop_and_exit(self) -> None:
        self.stop()
        os._exit(0)


class _Batch:
    """Messages read for one process, put in its mailbox together."""

    __slots__ = ("proc", "msgs")

    def __init__(self):
        self.proc, self.msgs = None, []

    def add(self, proc, msg) -> None:
        if proc is not self.proc:
            self.flush()
            self.proc = proc
        self.msgs.append(msg)

    def flush(self) -> None:
        if self.msgs:
            self.proc.deliver_many(self.msgs)
            self.msgs = []
        self.proc = None
