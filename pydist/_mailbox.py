"""A process's state: its mailbox, and how it sleeps and is woken.

A process sleeps on a bare lock, held while there is nothing new for it: whoever
gives it a message or a reply releases it (in C, cheaper than a Condition).

The mailbox is a deque: other threads append at its end (atomic), and only the
process itself takes, from anywhere in it. A selective ``receive`` looks at each
message once per call: it copies the part it has not looked at yet (in C: a sender
may append meanwhile) and lets ``map`` run the match over the copy, then takes the
one that matched. So taking the last of N queued messages costs N looks, never N²
(indexing a deque in the middle walks it, each time).
"""

from __future__ import annotations

import threading
from collections import deque
from itertools import compress, count, islice, repeat
from typing import Any, Callable

from ._channel import flush_waiting

__all__ = ["Proc", "NOTHING"]

NOTHING = object()             # take() found no (matching) message


class Proc:
    """One process: its pid, its mailbox, and how it sleeps and is woken."""

    __slots__ = ("pid", "name", "mailbox", "idle", "alive", "thread", "watchers",
                 "group_leader", "replies", "woken", "spawned", "links", "trap_exit",
                 "exit_reason", "guard", "exiting", "aliases")

    def __init__(self, pid, group_leader, spawned: bool, light: bool = False):
        self.pid = pid
        self.name: str | None = None
        self.mailbox: deque = deque()          # others append, only the process takes
        self.idle = False              # blocked in receive with nothing to do
        self.alive = True
        self.thread: threading.Thread | None = None
        self.watchers: dict = {}       # monitors on it: ref -> (watcher, target as named)
        self.links: set = set()                # pids linked to it, here or elsewhere
        self.trap_exit = False                 # exit signals become ("EXIT", ...) messages
        self.exit_reason = None                # set when a signal killed it (see _signals)
        self.aliases: set = set()              # its active aliases (GenServer.call's)
        self.group_leader = group_leader       # where its output goes (None: this node)
        self.replies: dict[int, tuple] = {}    # answers to its requests, by reference
        # Its wake-up (see above): acquired now, as there is nothing new yet. A light
        # process (_light) has neither lock: its scheduler wakes it, and nothing can
        # stop it from outside half-way through a write.
        self.woken = None if light else threading.Lock()
        if not light:
            self.woken.acquire()
        self.spawned = spawned
        # A spawned process's thread can be stopped from outside (_signals): ``guard`` is
        # held while it writes or delivers, so a stop never lands half-way through.
        self.guard = threading.RLock() if spawned and not light else None
        self.exiting = False                   # past the point where a stop may land

    # -- other threads
    def signal(self) -> None:
        """Wake the process if it waits (in receive, or for a reply)."""
        try:
            self.woken.release()
        except RuntimeError:                   # already released: it looks anyway
            pass

    def deliver(self, msg) -> None:
        self.mailbox.append(msg)
        self.idle = False
        self.signal()

    def deliver_many(self, msgs: list) -> None:
        self.mailbox.extend(msgs)
        self.idle = False
        self.signal()

    def messages(self) -> list:
        """Every queued message, oldest first (for Process.info)."""
        return _copy(self.mailbox, 0, None)

    # -- the process itself
    def take(self, match: Callable[[Any], bool] | None, start: int) -> tuple[Any, int]:
        """The first queued message (matching ``match``, if given) from position
        ``start`` on (those before it were looked at by this receive already);
        ``(NOTHING, position)`` if there is none, so the next look starts there."""
        box = self.mailbox
        if match is None:
            return (box.popleft(), 0) if box else (NOTHING, 0)
        end = len(box)
        if end > start:
            i = next(compress(count(start), map(match, _copy(box, start, end))), None)
            if i is not None:
                msg = box[i]               # only this process removes: i still points at it
                del box[i]
                return msg, i
        return NOTHING, end

    def remove(self, match: Callable[[Any], bool]) -> None:
        """Drop every queued message ``match`` accepts (demonitor's flush)."""
        box = self.mailbox
        for msg in [m for m in _copy(box, 0, None) if match(m)]:
            box.remove(msg)

    def clear(self) -> list:
        """Take every queued message, oldest first (for flush)."""
        box = self.mailbox
        return list(map(deque.popleft, repeat(box, len(box))))

    def sleep(self, remaining: float) -> None:
        """Until something new arrives, or ``remaining`` seconds pass (-1: no limit).
        What this thread left queued for a connection is written first (_channel)."""
        flush_waiting(self.guard)
        self.woken.acquire(True, remaining)


def _copy(box: deque, start: int, end: int | None) -> list:
    """``box[start:end]`` as a list. Copying runs in C, so no sender appends meanwhile;
    should a garbage collection run Python code in between and let one in, the deque
    says so (RuntimeError) and we copy again."""
    while True:
        try:
            return list(islice(box, start, end))
        except RuntimeError:
            continue
