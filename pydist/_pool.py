"""Worker threads that are reused, so no thread is started per message.

Readers of connections and rpc calls run on these threads; a thread that finished
its job waits for the next one.
"""

from __future__ import annotations

import sys
import threading
from queue import SimpleQueue
from typing import Callable

from ._process import _table

__all__ = ["Pool"]


class Pool:
    """Reusable threads: no thread is started per message once the pool is warm."""

    def __init__(self):
        self.jobs: SimpleQueue = SimpleQueue()
        self.lock = threading.Lock()
        self.idle = 0
        self.count = 0

    def submit(self, fn: Callable, *args) -> None:
        with self.lock:
            if self.idle:
                self.idle -= 1
            else:
                self.count += 1
                threading.Thread(target=self._work, daemon=True,
                                 name=f"pydist-worker-{self.count}").start()
        self.jobs.put((fn, args))

    def _work(self) -> None:
        me = threading.current_thread()
        name = me.name                        # readers rename themselves while reading
        while (job := self.jobs.get()) is not None:
            try:
                job[0](*job[1])
            except Exception as exc:              # a bug here must not kill the node
                print(f"pydist: internal error in {job[0].__name__}: {exc!r}",
                      file=sys.stderr)
            finally:
                _table.local.proc = None
                me.name = name
            with self.lock:
                self.idle += 1

    def stop(self) -> None:
        for _ in range(self.count):
            self.jobs.put(None)
