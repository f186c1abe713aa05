"""The threads that serve calls from other nodes (Erlang starts a process per call).

``rpc.call``, ``rpc.cast``, ``Node.spawn`` and the end-of-cell ``SYNC`` that arrive
on a connection run here, never in the connection's reader, so a slow call delays
nobody but its caller. The pool is bounded and gives its threads back:

- at most ``MAX_WORKERS`` calls run at once; past that, calls wait in order in the
  queue (never refused), and start as running ones finish;
- a thread with nothing to do for ``IDLE_EXIT`` seconds ends, so a node that served
  a burst of 200 calls goes back to its few threads.

An idle thread sleeps on a lock of its own, and ``submit`` hands it the job and
releases that lock: one wake-up, the cheapest hand-off between two threads.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from typing import Callable

from ._channel import flush_waiting
from ._process import _table

__all__ = ["Pool", "MAX_WORKERS", "IDLE_EXIT"]

MAX_WORKERS = 256            # calls that run at once on one node; more wait their turn
IDLE_EXIT = 10.0             # seconds an idle thread waits for work before it ends


class _Worker:
    __slots__ = ("wake", "job")

    def __init__(self, job):
        self.wake = threading.Lock()
        self.wake.acquire()
        self.job = job


class Pool:
    """A bounded set of reusable threads; jobs past the bound wait in order."""

    def __init__(self, max_workers: int = MAX_WORKERS, idle_exit: float = IDLE_EXIT):
        self.max_workers, self.idle_exit = max_workers, idle_exit
        self.lock = threading.Lock()
        self.queue: deque = deque()          # jobs no thread could take yet
        self.idle: list[_Worker] = []        # the most recently idle last (its cache is warm)
        self.threads = 0                     # alive now
        self._names = 0

    def submit(self, fn: Callable, *args) -> None:
        """Run ``fn(*args)`` on a thread of the pool: now, or when one is free."""
        job = (fn, args)
        with self.lock:
            if self.idle:
                worker = self.idle.pop()
                worker.job = job
                worker.wake.release()
                return
            if self.threads >= self.max_workers:
                self.queue.append(job)
                return
            self.threads += 1
            self._names += 1
        threading.Thread(target=self._work, args=(_Worker(job),), daemon=True,
                         name=f"pydist-worker-{self._names}").start()

    def _work(self, worker: _Worker) -> None:
        local = _table.local
        while worker.job is not None:                # None: the pool stopped
            fn, args = worker.job
            worker.job = None
            try:
                fn(*args)
            except Exception as exc:                 # a bug here must not kill the node
                print(f"pydist: internal error in {fn.__name__}: {exc!r}", file=sys.stderr)
            finally:
                local.proc = None
            flush_waiting()                          # its reply, if it streamed
            with self.lock:
                if self.queue:
                    worker.job = self.queue.popleft()
                    continue
                self.idle.append(worker)
            if worker.wake.acquire(True, self.idle_exit):
                continue                             # submit gave it a job
            with self.lock:
                if worker in self.idle:              # idle long enough: give the thread back
                    self.idle.remove(worker)
                    self.threads -= 1
                    return
            worker.wake.acquire()                    # a job came just as time ran out

    def stop(self) -> None:
        """End every idle thread; busy ones end when their job is done."""
        with self.lock:
            self.max_workers = 0
            idle, self.idle = self.idle, []
            self.threads -= len(idle)
        for worker in idle:
            worker.wake.release()                    # with no job: it ends
