"""Many conversations at once between nodes (pydist/_reader.py, _pool.py, _calls.py):
no conversation holds up another, calls run in parallel, nothing waits for a timer,
idle nodes sleep, and whatever a user can define travels. Real nodes, real processes;
the time bounds here are loose on purpose (`python -m bench` measures the figures)."""

import os
import threading
import time

import pytest
from conftest import cpu_seconds, python

from pydist import Node, Process, peer, receive, rpc, self, send, spawn
from pydist._pool import Pool


@pytest.fixture
def quick_heartbeat():
    """This node, and the peers it starts, with a 1 s heartbeat (so 3 s is long)."""
    Node.start(f"cc{os.getpid()}", heartbeat=1.0)
    try:
        yield
    finally:
        Node.stop()


def _in_threads(n: int, fun, *args) -> list:
    results, threads = [None] * n, []

    def run(i):
        try:
            results[i] = fun(*args)
        except Exception as exc:               # reported below, with the others
            results[i] = exc
    for i in range(n):
        threads.append(threading.Thread(target=run, args=(i,)))
        threads[-1].start()
    for t in threads:
        t.join(60)
    return results


def test_a_long_call_does_not_stall_quick_ones_nor_the_heartbeat(quick_heartbeat):
    # The case that used to cut two healthy nodes apart: a call much longer than the
    # heartbeat, and quick calls from other processes meanwhile.
    with peer.start("ccslow") as b:
        long_call = _in_threads_async(lambda: rpc.call(b.node, "time", "sleep", [3.5]))
        time.sleep(0.2)
        for _ in range(30):
            start = time.perf_counter()
            assert rpc.call(b.node, "operator", "add", [1, 2], timeout=5) == 3
            assert time.perf_counter() - start < 1.0, "a quick call waited for the long one"
            time.sleep(0.1)
        long_call.join(10)
        assert long_call.result is None, f"the long call failed: {long_call.result!r}"
        assert b.node in Node.list(), "healthy nodes declared each other down"


class _Async(threading.Thread):
    def __init__(self, fun):
        super().__init__(daemon=True)
        self.fun, self.result = fun, "not finished"

    def run(self):
        try:
            self.fun()
            self.result = None
        except Exception as exc:
            self.result = exc


def _in_threads_async(fun) -> _Async:
    thread = _Async(fun)
    thread.start()
    return thread


def test_concurrent_callers_are_served_in_parallel(node):
    with peer.start("ccpar") as b:
        def ten_calls():
            return [rpc.call(b.node, "time", "sleep", [0.05], timeout=20) for _ in range(10)]
        start = time.perf_counter()
        results = _in_threads(20, ten_calls)
        took = time.perf_counter() - start
        assert all(r == [None] * 10 for r in results), results
        # One after another: 200 × 50 ms = 10 s. In parallel: about 0.5 s.
        assert took < 5, f"20 callers × 10 calls of 50 ms took {took:.1f} s: not in parallel"


def test_two_hundred_slow_calls_at_once_all_return(node):
    with peer.start("cc200") as b:
        start = time.perf_counter()
        results = _in_threads(200, rpc.call, b.node, "time", "sleep", [1.0])
        took = time.perf_counter() - start
        failed = [r for r in results if r is not None]
        assert not failed, f"{len(failed)} of 200 calls failed, e.g. {failed[0]!r}"
        assert took < 15, f"200 concurrent 1 s calls took {took:.1f} s"


def _responders(n: int) -> list:
    from pydist import receive, send, spawn

    def answer():
        sender, question = receive(timeout=30)
        send(sender, ("answer", question))
    return [spawn(answer) for _ in range(n)]


def test_a_thousand_request_reply_pairs_across_two_nodes(node):
    with peer.start("ccpairs") as b:
        targets = rpc.call(b.node, _responders, [1000], timeout=30)
        me = self()

        def ask(pid, i):
            send(pid, (self(), i))
            send(me, receive(timeout=30))
        start = time.perf_counter()
        for i, pid in enumerate(targets):
            spawn(ask, pid, i)
        answers = sorted(receive(timeout=30)[1] for _ in targets)
        took = time.perf_counter() - start
        assert answers == list(range(1000))
        assert took < 20, f"1,000 pairs took {took:.1f} s"


def _collect(n: int, report_to):
    """On a peer: a process that takes ``n`` messages, then sends them all back."""
    def collect():
        send(report_to, [receive(timeout=30) for _ in range(n)])
    return spawn(collect)


def test_streams_from_several_senders_arrive_whole_and_in_order(node):
    # Streaming sends leave in batches (pydist/_channel.py); none is lost or reordered.
    with peer.start("ccstream") as b:
        n, senders = 3000, 3
        collector = rpc.call(b.node, _collect, [n * senders, self()])

        def stream(k):
            for i in range(n):
                send(collector, (k, i))
        for k in range(senders):
            spawn(stream, k)
        got = receive(timeout=30)
        for k in range(senders):
            mine = [i for s, i in got if s == k]
            assert mine == list(range(n)), f"sender {k}: {len(mine)} of {n}, or out of order"


def test_a_streamed_message_does_not_wait_for_its_sender_to_wait(node):
    # A process that sends three messages and then blocks in C (time.sleep, never a
    # pydist wait): the queued two are written by the connection's writer thread, at
    # once, not when the sender next waits.
    with peer.start("ccbackstop") as b:
        collector = rpc.call(b.node, _collect, [3, self()])
        sleeper = spawn(lambda: [send(collector, i) for i in range(3)] and time.sleep(5))
        start = time.perf_counter()
        assert receive(timeout=4) == [0, 1, 2]
        assert time.perf_counter() - start < 2, "the streamed messages waited for the sender"
        Process.exit(sleeper, "kill")


def test_a_stream_to_a_node_that_does_not_read_waits_instead_of_queueing(node):
    # The receiving node is stopped (SIGSTOP): the socket fills, and the sender then
    # waits for it, as a write does; the queue stays about one batch long.
    import signal

    from pydist._channel import BATCH_ITEMS
    from pydist._process import _table
    with peer.start("ccstopped") as b:
        collector = rpc.call(b.node, _collect, [30_000, self()])
        channel = _table.dist.peers[b.node].channel
        os.kill(b.os_pid, signal.SIGSTOP)
        try:
            blob = "x" * 1000                  # three senders: one blocks in the write,
            senders = [spawn(lambda: [send(collector, blob) for _ in range(10_000)])
                       for _ in range(3)]      # the others find the connection taken
            longest, deadline = 0, time.monotonic() + 1.5
            while time.monotonic() < deadline:
                longest = max(longest, len(channel._pending))
                time.sleep(0.005)
            assert any(Process.info(p) for p in senders), "30 MB went into a stopped node"
        finally:
            os.kill(b.os_pid, signal.SIGCONT)
        assert len(receive(timeout=30)) == 30_000
        assert longest <= 4 * BATCH_ITEMS, f"{longest} items queued for a stopped node"


def _threads_named(prefix: str) -> int:
    return sum(t.name.startswith(prefix) for t in threading.enumerate())


def test_the_call_pool_is_bounded_queues_the_rest_and_gives_threads_back():
    pool, running, most, lock = Pool(max_workers=3, idle_exit=0.3), [0], [0], threading.Lock()
    done = threading.Semaphore(0)

    def job():
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        done.release()
    for _ in range(12):
        pool.submit(job)
    for _ in range(12):
        assert done.acquire(timeout=10), "a queued job never ran"
    assert most[0] == 3, f"{most[0]} jobs ran at once; the bound is 3"
    deadline = time.monotonic() + 5
    while pool.threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.threads == 0, f"{pool.threads} idle threads were not given back"
    pool.submit(job)                            # and it grows again on demand
    assert done.acquire(timeout=5)
    pool.stop()


def test_a_spawn_that_cannot_start_a_thread_fails_clearly_and_leaves_nothing(monkeypatch):
    from pydist._process import _table
    before = dict(_table.procs)

    def refuse(self):
        raise RuntimeError("can't start new thread")
    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(Exception, match="cannot start another process"):
        spawn(print, "never")
    monkeypatch.undo()
    assert _table.procs == before, "the failed spawn left a half-made process behind"
    assert _table.quiet(0.5), "a failed spawn left the node looking busy"



def test_idle_nodes_sleep(node):
    peers = [peer.start(f"ccidle{i}") for i in range(4)]
    try:
        for p in peers:                          # a full mesh of five nodes
            assert Node.ping(p.node) == "pong"
        time.sleep(0.5)

        def used_in(seconds):
            before = [cpu_seconds(p.os_pid) for p in peers]
            time.sleep(seconds)
            return sum(cpu_seconds(p.os_pid) - b for p, b in zip(peers, before, strict=True))
        # The quieter of two 2 s windows, twice (a moment of load elsewhere on the machine
        # costs the peers' wake-ups more): about 0.03 here. A 20 ms timer loop alone cost
        # 4 nodes about 0.08 s in 4 s.
        used = 2 * min(used_in(2), used_in(2))
        assert used < 0.05, f"4 idle nodes used {used:.2f} CPU-seconds in 4 s"
    finally:
        for p in peers:
            p.stop()


def _busy_forever():
    from pydist import spawn

    def spin():
        while True:
            time.sleep(0.01)
    spawn(spin)


def test_a_busy_node_delays_the_end_of_a_cell_by_a_bounded_time(node):
    from pydist._dist import SETTLE_LIMIT
    from pydist._process import _table
    with peer.start("ccbusy") as busy, peer.start("ccquiet") as quiet:
        rpc.call(busy.node, _busy_forever, [])

        def say():
            print("printed on the quiet node")
        start = time.perf_counter()
        _table.dist.settle()
        took = time.perf_counter() - start
        assert took < SETTLE_LIMIT + 0.5, f"the end of a cell waited {took:.2f} s"
        Node.spawn(quiet.node, say)
        start = time.perf_counter()
        _table.dist.settle()
        assert time.perf_counter() - start < SETTLE_LIMIT + 0.5


SHIPPING = """
import threading
from pydist import Node, peer, rpc

_table = {"rows": 3}            # globals named like pydist's internals
console = "the notebook's console"
guard = threading.Lock()        # and one thing that cannot travel

def outer():
    from pydist import receive, self, send, spawn
    def inner(x):
        me = self()
        spawn(lambda: send(me, x * 2))
        return receive(timeout=5)
    return inner

def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)

class Point:
    def __init__(self, x):
        self.x = x
    def norm(self):
        return abs(self.x)

k = 3
Node.start("ccship")
with peer.start("ccshipb") as b:
    cases = [("closure over pydist names", outer(), [21]),
             ("lambda over a global", lambda x: x + k, [1]),
             ("recursive function", fact, [5]),
             ("class defined here", lambda: Point(-2).norm(), []),
             ("instance of it", Point.norm, [Point(-7)]),
             ("globals named _table and console", lambda: (_table["rows"], console), [])]
    for name, fun, args in cases:
        print(name, "->", rpc.call(b.node, fun, args, timeout=10))
    try:
        rpc.call(b.node, lambda: guard.locked(), [])
    except TypeError as exc:
        print("lock ->", exc)
Node.stop()
"""


def test_whatever_a_script_defines_travels(node):
    Node.stop()                                   # the script is its own node
    out = python(SHIPPING, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" -> ", 1) for line in out.stdout.splitlines() if " -> " in line)
    expected = {"closure over pydist names": "42", "lambda over a global": "4",
                "recursive function": "120", "class defined here": "2",
                "instance of it": "7",
                "globals named _table and console": "(3, \"the notebook's console\")"}
    for case, value in expected.items():
        assert lines.get(case) == value, \
            f"shipped {case}: expected {value}, got {lines.get(case)!r}\n{out.stderr}"
    assert "lock" in lines and "stay on their node" in lines["lock"], lines.get("lock")
