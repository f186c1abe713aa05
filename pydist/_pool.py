"""The threads that serve calls from other nodes (Erlang starts a process per call).

``rpc.call``, ``rpc.cast``, ``Node.spawn`` and the end-of-cell ``SYNC`` that arrive
on a connection run here, never in the connection's reader, so a slow call delays
nobody but its caller. The pool is bounded and gives its threads back:

- at most ``MAX_WORKERS`` calls run at once; past that, calls wait in order in the
  queue (never refused), and start as running ones finish;
- a thread with nothing to do for ``IDLE_EXIT`` seconds ends, so a node that served
  a burst of 200 calls goes back to its few threads.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from typing import Callable

from ._process import _table

__all__ = ["Pool", "MAX_WORKERS", "IDLE_EXIT"]

MAX_WORKERS = 256            # calls that run at once on one node; more wait their turn
IDLE_EXIT = 10.0             # seconds an idle thread waits for work before it ends


class Pool:
    """A bounded set of reusable threads; jobs past the bound wait in order."""

    def __init__(self, max_workers: int = MAX_WORKERS, idle_exit: float = IDLE_EXIT):
        self.max_workers, self.idle_exit = max_workers, idle_exit
        self.jobs: deque = deque()
        self.lock = threading.Lock()
        self.work = threading.Condition(self.lock)
        self.threads = 0             # alive now
        self.idle = 0                # ... of which waiting for a job
        self.stopped = False
        self._names = 0

    def submit(self, fn: Callable, *args) -> None:
        with self.lock:
            self.jobs.append((fn, args))
            if self.idle > len(self.jobs) - 1:       # an idle thread takes it
                self.work.notify()
            elif self.threads < self.max_workers:
                self.threads += 1
                self._names += 1
                threading.Thread(target=self._work, daemon=True,
                                 name=f"pydist-worker-{self._names}").start()
            # else: it waits in the queue for the next thread that finishes

    def _work(self) -> None:
        local = _table.local
        while True:
            with self.lock:
                self.idle += 1
                while not self.jobs and not self.stopped:
                    if not self.work.wait(self.idle_exit) and not self.jobs:
                        break                        # idle long enough: give the thread back
                self.idle -= 1
                if not self.jobs:
                    self.threads -= 1
                    return
                fn, args = self.jobs.popleft()
            try:
                fn(*args)
            except Exception as exc:                 # a bug here must not kill the node
                print(f"pydist: internal error in {fn.__name__}: {exc!r}", file=sys.stderr)
            finally:
                local.proc = None

    def stop(self) -> None:
        """Let every thread end once the queue is empty."""
        with self.lock:
            self.stopped = True
            self.work.notify_all()
