"""A process's state: its mailbox, and how it sleeps and is woken.

A process sleeps on a bare lock, held while there is nothing new for it: whoever
gives it a message or a reply releases it (in C, cheaper than a Condition). A
process that reads one of its node's connections itself while it waits (see
``_reader``) sleeps in ``poll`` instead, on that connection and on a socket pair of
its own, and a message or a reply from elsewhere pokes the pair.
"""

from __future__ import annotations

import select
import socket
import threading
from collections import deque

__all__ = ["Proc", "MAX_PAIRS"]


MAX_PAIRS = 64                 # processes that may sleep in poll at once (see can_poll)


class Proc:
    """One process: its pid, its mailbox, and how it sleeps and is woken."""

    pairs = 0                    # how many processes have a socket pair now
    _pairs_lock = threading.Lock()

    __slots__ = ("pid", "name", "mailbox", "idle", "alive", "thread", "watchers",
                 "group_leader", "replies", "woken", "spawned", "waiting", "reading",
                 "direct_peer", "_pipe", "poller", "_polled")

    def __init__(self, pid, group_leader, spawned: bool):
        self.pid = pid
        self.name: str | None = None
        self.mailbox: deque = deque()          # others append, only the process takes
        self.idle = False              # blocked in receive with nothing to do
        self.alive = True
        self.thread: threading.Thread | None = None
        self.watchers: dict = {}               # monitors on this process: ref -> watcher
        self.group_leader = group_leader       # where its output goes (None: this node)
        self.replies: dict[int, tuple] = {}    # answers to its requests, by reference
        # Its wake-up (see above): acquired now, as there is nothing new yet.
        self.woken = threading.Lock()
        self.woken.acquire()
        self.spawned = spawned
        self.waiting = False           # blocked for a message or a reply
        self.reading = False           # in poll (see above)
        self.direct_peer = None        # the connection it may read itself
        self._pipe: tuple[socket.socket, socket.socket] | None = None
        self.poller = None             # its poll object, once it may sleep in poll
        self._polled: int | None = None

    def signal(self) -> None:
        """Wake the process if it waits (in receive, or for a reply)."""
        try:
            self.woken.release()
        except RuntimeError:                   # already released: it looks anyway
            pass
        if self.reading:
            self._poke()

    def deliver(self, msg) -> None:
        self.mailbox.append(msg)
        self.idle = False
        self.signal()

    def deliver_many(self, msgs: list) -> None:
        self.mailbox.extend(msgs)
        self.idle = False
        self.signal()

    def can_poll(self) -> bool:
        """Whether it may sleep in ``poll``: it needs a socket pair, and at most
        MAX_PAIRS processes have one at a time (two descriptors each), so a node with
        thousands of processes does not run out of descriptors; the others sleep on
        their lock. The pair is closed with the process object, so no descriptor is
        closed while another thread may poke it."""
        if self.poller is None:
            with Proc._pairs_lock:
                if Proc.pairs >= MAX_PAIRS:
                    return False
                Proc.pairs += 1
            pair = socket.socketpair()
            for end in pair:
                end.setblocking(False)
            self._pipe, self.poller = pair, select.poll()
            self.poller.register(pair[0].fileno(), select.POLLIN)
        return True

    def __del__(self) -> None:
        if self.poller is not None:
            with Proc._pairs_lock:
                Proc.pairs -= 1

    def poll(self, fd: int, remaining: float) -> bool:
        """Block until ``fd`` is readable (True), or the process is woken, or
        ``remaining`` seconds pass (-1: no limit); ``can_poll()`` must be true."""
        poller = self.poller
        if self._polled != fd:
            if self._polled is not None:
                poller.unregister(self._polled)
            poller.register(fd, select.POLLIN)
            self._polled = fd
        self.reading = True
        try:
            events = poller.poll(None if remaining < 0 else remaining * 1000)
        finally:
            self.reading = False
        readable = False
        for ready, _ in events:
            if ready == fd:
                readable = True
            else:
                try:
                    self._pipe[0].recv(4096)
                except OSError:
                    pass
        return readable

    def _poke(self) -> None:
        try:
            self._pipe[1].send(b"!")
        except (OSError, TypeError):           # full (it wakes anyway) or none yet
            pass
