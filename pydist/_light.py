"""Light processes: ``spawn(fun, light=True)``, many on one thread, as the BEAM runs them.

Elixir's twin is every process: the BEAM runs them on one scheduler per core, hundreds
of thousands at once, and switches between them at ``receive`` and after a budget of
reductions, so a busy loop never holds the others up. A pydist process is a thread by
default (``_process``): preempted like an Erlang process, but tens of thousands of
threads are slow to start and to schedule. A light process is a greenlet on this
node's one scheduler thread: it starts in microseconds, and a hundred thousand fit,
but it gives the scheduler back only where pydist waits for it (``receive``,
``Process.sleep``, ``rpc.call``, ``GenServer.call``) or when it ends. A light process
that computes for a second, or calls ``time.sleep``, stops every other light process
for that second (notebook 04 shows it). That is the choice: threads stay the default.

A light process is a ``Proc`` whose ``sleep`` switches to the scheduler and whose
``signal`` puts it back in the run queue; everything else (mailbox, links, monitors,
names, exit signals) is the same code as for a thread. An exit signal cannot be
raised inside a greenlet from outside (it shares its thread with the others): it
lands when the process next waits or sends.
"""

from __future__ import annotations

import heapq
import itertools
import sys
import threading
import time
from collections import deque

import greenlet

from ._channel import flush_waiting
from ._mailbox import Proc

__all__ = ["LightProc", "scheduler"]


class LightProc(Proc):
    """A process that runs as a greenlet of the node's scheduler (see the module)."""

    __slots__ = ("start", "glet", "scheduled", "naps")

    def __init__(self, pid, group_leader, start: tuple):
        super().__init__(pid, group_leader, spawned=True, light=True)
        self.start = start                 # (run, fun, args) until it first runs
        self.glet = None
        self.scheduled = False             # in the run queue now
        self.naps = 0                      # which sleep a timer was armed for

    def signal(self) -> None:
        _scheduler.ready(self)

    def sleep(self, remaining: float) -> None:
        # What it sent is written when the scheduler has nothing left to run (_loop):
        # the light processes of a node stream together, as a BEAM node's port does.
        self.naps += 1
        if remaining >= 0:
            _scheduler.arm(remaining, self)
        _scheduler.main.switch()           # back here when signalled or timed out


IDLE_KEPT = 1000             # greenlets kept for reuse after their process ended
_ENDED = object()            # what a greenlet says when its process has ended


def _greenlet_body(job: tuple):
    """What a greenlet runs: a process, then, when the scheduler reuses it, the next.
    Past IDLE_KEPT idle ones it ends instead (a greenlet dropped while suspended would
    be switched into once more, to unwind it)."""
    scheduler = _scheduler
    while True:
        proc, run, fun, args = job
        run(proc, fun, args)
        if len(scheduler.idle) >= IDLE_KEPT:
            return _ENDED
        scheduler.idle.append(greenlet.getcurrent())
        job = scheduler.main.switch(_ENDED)


class _Scheduler:
    """One thread that runs the ready light processes in turn, oldest first."""

    def __init__(self):
        self.ready_queue: deque[LightProc] = deque()
        self.timers: list = []             # (when, seq, proc, nap), touched by its thread only
        self.seq = itertools.count()
        self.woken = threading.Lock()      # held while it sleeps with nothing to do
        self.woken.acquire()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.ident = None
        self.main = None                   # its own greenlet, where processes switch back
        self.idle: list = []               # greenlets whose process ended, to reuse
        self.local = threading.local()     # the process table's (set by _proctable)

    def ready(self, proc: LightProc) -> None:
        if proc.scheduled:
            return
        proc.scheduled = True
        self.ready_queue.append(proc)
        if threading.get_ident() != self.ident and self.woken.locked():
            try:
                self.woken.release()
            except RuntimeError:           # woken meanwhile
                pass

    def start(self, proc: LightProc) -> None:
        if self.thread is None:
            with self.lock:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._loop, daemon=True,
                                                   name="pydist-light-scheduler")
                    self.thread.start()
        self.ready(proc)

    def arm(self, seconds: float, proc: LightProc) -> None:
        heapq.heappush(self.timers, (time.monotonic() + seconds, next(self.seq), proc,
                                     proc.naps))

    def _run(self, proc: LightProc, local) -> None:
        """Run ``proc`` until it waits or ends (start it, the first time)."""
        glet = proc.glet
        local.proc = proc
        if glet is None:
            job, proc.start = (proc, *proc.start), None
            # A process that ended leaves its greenlet to the next one: starting a
            # greenlet costs ten times more than switching to one.
            glet = proc.glet = self.idle.pop() if self.idle else greenlet.greenlet(
                _greenlet_body, self.main)
            ended = glet.switch(job)
        elif glet is not _ENDED and not glet.dead:
            ended = glet.switch()
        else:
            return
        if ended is _ENDED:
            proc.glet = _ENDED                 # never resumed for it again

    def _loop(self) -> None:
        self.ident, self.main = threading.get_ident(), greenlet.getcurrent()
        local, queue, timers = self.local, self.ready_queue, self.timers
        while True:
            while queue:
                proc = queue.popleft()
                proc.scheduled = False
                try:
                    self._run(proc, local)
                except Exception as exc:   # a bug here must not stop every light process
                    print(f"pydist: internal error running {proc.pid!r}: {exc!r}",
                          file=sys.stderr)
            local.proc = None
            flush_waiting()                # all ran: write what they sent, at once
            now = time.monotonic()
            while timers and timers[0][0] <= now:
                _, _, proc, nap = heapq.heappop(timers)
                if nap == proc.naps and proc.glet is not None and proc.glet is not _ENDED:
                    self.ready(proc)
            if not queue:
                self.woken.acquire(True, timers[0][0] - now if timers else -1)


_scheduler = _Scheduler()
scheduler = _scheduler
