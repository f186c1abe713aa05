"""A process's state: its mailbox, and how it sleeps and is woken.

A process sleeps on a bare lock, held while there is nothing new for it: whoever
gives it a message or a reply releases it (in C, cheaper than a Condition).

The mailbox has two parts, as Erlang's has: ``inbox``, where other threads append
(a deque: appending is atomic), and ``saved``, the messages the process has already
looked at and left for later, which only the process itself touches. A selective
``receive`` looks at each message once per call: first ``saved``, then what arrives,
moving it to ``saved`` if it does not match. So taking the last of N queued messages
costs N looks, never N² (a deque indexed in the middle costs a walk each time).
"""

from __future__ import annotations

import threading
from collections import deque
from itertools import islice
from typing import Any, Callable

__all__ = ["Proc", "NOTHING"]

NOTHING = object()             # take() found no (matching) message


class Proc:
    """One process: its pid, its mailbox, and how it sleeps and is woken."""

    __slots__ = ("pid", "name", "inbox", "saved", "idle", "alive", "thread", "watchers",
                 "group_leader", "replies", "woken", "spawned", "__weakref__")

    def __init__(self, pid, group_leader, spawned: bool):
        self.pid = pid
        self.name: str | None = None
        self.inbox: deque = deque()            # others append, only the process takes
        self.saved: deque = deque()            # looked at, left for a later receive
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

    # -- other threads
    def signal(self) -> None:
        """Wake the process if it waits (in receive, or for a reply)."""
        try:
            self.woken.release()
        except RuntimeError:                   # already released: it looks anyway
            pass

    def deliver(self, msg) -> None:
        self.inbox.append(msg)
        self.idle = False
        self.signal()

    def deliver_many(self, msgs: list) -> None:
        self.inbox.extend(msgs)
        self.idle = False
        self.signal()

    def messages(self) -> list:
        """Every queued message, oldest first (for Process.info)."""
        return [*self.saved, *self.inbox]

    # -- the process itself
    def take(self, match: Callable[[Any], bool] | None, start: int) -> tuple[Any, int]:
        """The first queued message (matching ``match``, if given) at or after position
        ``start`` of the messages this receive has not looked at yet; ``(NOTHING,
        position)`` if there is none, so the next look starts where this one ended."""
        saved, inbox = self.saved, self.inbox
        if match is None:
            if saved:
                return saved.popleft(), 0
            return (inbox.popleft(), 0) if inbox else (NOTHING, 0)
        for i, msg in enumerate(islice(saved, start, None), start):
            if match(msg):
                del saved[i]
                return msg, i
        while inbox:
            msg = inbox.popleft()
            if match(msg):
                return msg, len(saved)
            saved.append(msg)
        return NOTHING, len(saved)

    def clear(self) -> list:
        """Take every queued message, oldest first (for flush)."""
        taken, self.saved = list(self.saved), deque()
        while self.inbox:
            taken.append(self.inbox.popleft())
        return taken

    def sleep(self, remaining: float) -> None:
        """Until something new arrives, or ``remaining`` seconds pass (-1: no limit)."""
        self.woken.acquire(True, remaining)
