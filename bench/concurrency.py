"""Workloads with many conversations at once (issue: the core under concurrency).

Each returns plain numbers for ``bench.__main__`` to record; all run unpinned, as a
user runs them. The process-count workloads are measured beside the floor of the
process model itself: bare threads doing the same spawn / wake / reply / exit.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from queue import SimpleQueue

from pydist import Process, peer, receive, rpc, send, spawn
from pydist import self as self_pid
from pydist._process import _table

AUTHKEY = b"bench-cookie"


# ---------------------------------------------------------------- concurrent callers

def _callers(c: int, per: int, make_call) -> tuple[float, float]:
    """``c`` threads, each making ``per`` calls with its own ``make_call()``:
    (calls per second, p99 latency in µs)."""
    latencies: list[float] = []
    lock, go = threading.Lock(), threading.Event()

    def caller(call):
        mine = []
        go.wait(60)
        for _ in range(per):
            start = time.perf_counter()
            call()
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)
    threads = [threading.Thread(target=caller, args=(make_call(),)) for _ in range(c)]
    for t in threads:
        t.start()
    time.sleep(0.05)                          # every caller waits at the start line
    start = time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    latencies.sort()
    return c * per / took, latencies[int(len(latencies) * 0.99)] * 1e6


def concurrent_floor(port: int, c: int, per: int) -> tuple[float, float]:
    """The floor: each caller has its own stdlib connection (the server runs a thread
    per connection), which is the best a plain socket client can do."""
    import multiprocessing.connection as mpc

    def make_call():
        conn = mpc.Client(("127.0.0.1", port), authkey=AUTHKEY)

        def call():
            conn.send(("call", 1, 2))
            return conn.recv()
        return call
    return _callers(c, per, make_call)


def concurrent_pydist(node: str, c: int, per: int) -> tuple[float, float]:
    return _callers(c, per, lambda: lambda: rpc.call(node, "operator", "add", [1, 2]))


# ---------------------------------------------------------------- request/reply pairs

def _responders(n: int) -> list:
    from pydist import receive, send, spawn

    def answer():
        sender, question = receive(timeout=60)
        send(sender, question)
    return [spawn(answer) for _ in range(n)]


def pairs(node: str, n: int = 1000) -> float:
    """``n`` processes here, each asking its own process there and waiting: seconds."""
    targets = rpc.call(node, _responders, [n], timeout=60)
    me = self_pid()

    def ask(pid, i):
        send(pid, (self_pid(), i))
        send(me, receive(timeout=60))
    start = time.perf_counter()
    for i, pid in enumerate(targets):
        spawn(ask, pid, i)
    for _ in targets:
        receive(timeout=60)
    return time.perf_counter() - start


# ---------------------------------------------------------------- overlap

def overlap(node: str) -> float:
    """Quick calls while a 2 s call runs on the same node: the slowest, in ms."""
    long_call = threading.Thread(target=rpc.call, args=(node, "time", "sleep", [2.0]))
    long_call.start()
    time.sleep(0.1)
    worst = 0.0
    while long_call.is_alive():
        start = time.perf_counter()
        rpc.call(node, "operator", "add", [1, 2], timeout=10)
        worst = max(worst, time.perf_counter() - start)
        time.sleep(0.01)
    long_call.join()
    return worst * 1e3


# ---------------------------------------------------------------- mailbox depth

def mailbox(depth: int) -> float:
    """Selective receive of the last of ``depth`` queued messages: ms."""
    me = self_pid()
    for i in range(depth):
        send(me, ("filler", i))
    send(me, ("wanted", 0))
    start = time.perf_counter()
    receive(timeout=10, match=lambda m: m[0] == "wanted")
    took = time.perf_counter() - start
    for _ in range(depth):
        receive(timeout=0)
    return took * 1e3


# ---------------------------------------------------------------- many processes

def processes(kind: str, n: int) -> float:
    """``processes_pydist`` or ``processes_floor`` in a fresh process that is not a
    node: thousands of runnable threads keep a process's other threads off the GIL
    for seconds, and the benchmark's node must keep answering its heartbeats."""
    try:
        out = subprocess.run([sys.executable, "-m", "bench.concurrency", kind, str(n)],
                             capture_output=True, text=True, timeout=300, check=True,
                             cwd=Path(__file__).resolve().parent.parent)
    except subprocess.TimeoutExpired:         # thousands of threads can thrash for minutes
        return float("inf")                   # shown as "inf": not done in 300 s
    return float(out.stdout.split()[-1])


def processes_pydist(n: int) -> float:
    """Spawn ``n`` processes, message each, collect each reply, let all end: seconds."""
    me = self_pid()

    def worker():
        send(me, receive(timeout=60))
    start = time.perf_counter()
    pids = [spawn(worker) for _ in range(n)]
    for i, pid in enumerate(pids):
        send(pid, i)
    for _ in pids:
        receive(timeout=60)
    deadline = time.monotonic() + 60
    while any(_table.procs.get(pid.num) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.001)                     # ... and all have ended
    return time.perf_counter() - start


def processes_light(n: int, wait_first: bool = False) -> float:
    """``processes_pydist`` with light processes (``spawn(..., light=True)``), the one
    that spawns them light too, as an Erlang program's would be. As written, each is
    messaged before it first runs (so it never waits, and the next one reuses its
    greenlet); ``wait_first`` lets them all start and wait in receive first, as the
    threads of ``processes_pydist`` do."""
    main = self_pid()

    def parent():
        me = self_pid()

        def worker():
            send(me, receive(timeout=60))
        start = time.perf_counter()
        pids = [spawn(worker, light=True) for _ in range(n)]
        if wait_first:
            Process.sleep(0.001)          # every worker starts and waits in receive
        for i, pid in enumerate(pids):
            send(pid, i)
        for _ in pids:
            receive(timeout=60)
        send(main, (start, pids))
    spawn(parent, light=True)
    start, pids = receive(timeout=90)
    deadline = time.monotonic() + 60
    while any(_table.procs.get(pid.num) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.001)
    return time.perf_counter() - start


def processes_greenlet(n: int) -> float:
    """The floor of light processes: bare greenlets with a deque each, one run queue."""
    import greenlet
    ready, replies, main = deque(), [], greenlet.getcurrent()

    def worker(box):
        while not box:
            main.switch()
        replies.append(box.popleft())
    start = time.perf_counter()
    workers = [(greenlet.greenlet(worker), deque()) for _ in range(n)]
    for g, box in workers:
        g.switch(box)                         # runs until it waits for its message
    for i, (g, box) in enumerate(workers):
        box.append(i)
        ready.append(g)
    while ready:
        ready.popleft().switch()
    assert len(replies) == n
    return time.perf_counter() - start


def processes_floor(n: int) -> float:
    """The same with bare threads: a SimpleQueue each for the message, one for replies."""
    replies: SimpleQueue = SimpleQueue()

    def worker(box):
        replies.put(box.get(timeout=60))
    start = time.perf_counter()
    boxes, threads = [], []
    for _ in range(n):
        box = SimpleQueue()
        t = threading.Thread(target=worker, args=(box,), daemon=True)
        t.start()
        boxes.append(box)
        threads.append(t)
    for i, box in enumerate(boxes):
        box.put(i)
    for _ in boxes:
        replies.get(timeout=60)
    for t in threads:
        t.join()
    return time.perf_counter() - start


# ---------------------------------------------------------------- idle cluster

def _cpu_seconds(pid: int) -> float:
    """CPU time of every live thread of ``pid``, in ns precision (schedstat), not in
    the 10 ms ticks of /proc/PID/stat."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def idle_cluster(nodes: int = 8, seconds: float = 10.0) -> float:
    """CPU-seconds per 30 s used by ``nodes`` idle peers in a full mesh (this node
    connected too, and idle meanwhile)."""
    peers = [peer.start(f"benchidle{os.getpid()}x{i}") for i in range(nodes)]
    try:
        for p in peers:
            rpc.call(p.node, "pydist", "Node.list", [])
        time.sleep(1.0)                                 # the mesh settles
        before = [_cpu_seconds(p.os_pid) for p in peers]
        time.sleep(seconds)
        used = sum(_cpu_seconds(p.os_pid) - b for p, b in zip(peers, before, strict=True))
    finally:
        for p in peers:
            p.stop()
    return used * 30 / seconds


def median_of(fun, *args, times: int = 3) -> float:
    return statistics.median(fun(*args) for _ in range(times))


if __name__ == "__main__":
    kind, count = sys.argv[1], int(sys.argv[2])
    print({"pydist": processes_pydist, "floor": processes_floor, "light": processes_light,
           "light-waiting": lambda n: processes_light(n, wait_first=True),
           "greenlet": processes_greenlet}[kind](count))


__all__ = ["concurrent_floor", "concurrent_pydist", "pairs", "overlap", "mailbox",
           "processes", "idle_cluster", "median_of"]
