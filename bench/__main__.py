"""``python -m bench``: pydist against its floor and its peers, in one interleaved run.

Every contender serves from its own OS process on 127.0.0.1. Each round runs every
workload on every contender in turn (A B C A B C ...), so a noisy moment hurts all
of them alike; figures are medians over rounds with their min–max, and ratios to
the floor are taken round by round. Results go to stdout and ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from pydist import Node, peer, receive, rpc, send
from pydist import self as self_pid

HERE = Path(__file__).resolve().parent
AUTHKEY = b"bench-cookie"
MESSAGE = ("add", {"name": "nike", "qty": 30})
ERLANG = {"rpc": "85 µs", "msg": "80 µs", "oneway": "420k msg/s", "bulk": "2.5 GB/s",
          "connect": "5 ms", "peer": "0.18 s", "nodedown": "5 ms", "notebooks": "—"}


# ---------------------------------------------------------------- contenders

class _Server:
    def __init__(self, kind: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.servers", kind],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=HERE.parent)
        self.address = self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.terminate()
        self.proc.wait(5)


class _Connection:
    """stdlib multiprocessing.connection (the floor) or multiprocess.connection."""

    def __init__(self, kind: str):
        self.module = __import__(f"{'multiprocessing' if kind == 'floor' else 'multiprocess'}"
                                 ".connection", fromlist=["Client"])
        self.server = _Server(kind)
        self.port = int(self.server.address)
        self.conn = self.connect()

    def connect(self):
        return self.module.Client(("127.0.0.1", self.port), authkey=AUTHKEY)

    def rpc(self):
        self.conn.send(("call", 1, 2))
        return self.conn.recv()

    def echo(self, msg):
        self.conn.send(("echo", msg))
        return self.conn.recv()

    def oneway(self, msg):
        self.conn.send(msg)

    def done(self):
        self.conn.send(("done",))
        return self.conn.recv()

    def first_connect(self) -> float:
        start = time.perf_counter()
        conn = self.connect()
        took = time.perf_counter() - start
        conn.close()
        return took

    def close(self):
        self.conn.close()
        self.server.close()


class _Pyro5:
    def __init__(self):
        import Pyro5.api
        self.server = _Server("pyro5")
        self.proxy = Pyro5.api.Proxy(self.server.address)

    def rpc(self):
        return self.proxy.add(1, 2)

    def close(self):
        self.proxy._pyroRelease()
        self.server.close()


class _Rpyc:
    def __init__(self):
        import rpyc
        self.server = _Server("rpyc")
        self.conn = rpyc.connect("127.0.0.1", int(self.server.address))

    def rpc(self):
        return self.conn.root.add(1, 2)

    def close(self):
        self.conn.close()
        self.server.close()


class _Zmq:
    def __init__(self):
        import zmq
        self.server = _Server("zmq")
        self.sock = zmq.Context.instance().socket(zmq.REQ)
        self.sock.connect(f"tcp://127.0.0.1:{self.server.address}")

    def rpc(self):
        self.sock.send_pyobj(("call", 1, 2))
        return self.sock.recv_pyobj()

    def close(self):
        self.sock.close(linger=0)
        self.server.close()


def _echo():
    from pydist import receive, send
    while True:
        sender, msg = receive()
        send(sender, msg)


def _sink():
    from pydist import receive, send
    count = 0
    while True:
        msg = receive()
        if msg[0] == "done":
            send(msg[1], count)
            count = 0
        else:
            count += 1


def _register(name, fun):
    from pydist import Process, spawn
    Process.register(spawn(fun), name)


class _Pydist:
    def __init__(self):
        Node.start(f"bench{os.getpid()}", cookie="bench-cookie")
        self.peer = peer.start(f"benchsrv{os.getpid()}")
        self.node = self.peer.node
        rpc.call(self.node, _register, ["echo", _echo])
        rpc.call(self.node, _register, ["sink", _sink])

    def rpc(self):
        return rpc.call(self.node, "operator", "add", [1, 2])

    def echo(self, msg):
        send(("echo", self.node), (self_pid(), msg))
        return receive()

    def oneway(self, msg):
        send(("sink", self.node), msg)

    def done(self):
        send(("sink", self.node), ("done", self_pid()))
        return receive(timeout=60)

    def first_connect(self) -> float:
        Node.disconnect(self.node)
        start = time.perf_counter()
        assert Node.connect(self.node)
        return time.perf_counter() - start

    def peer_start(self) -> float:
        start = time.perf_counter()
        p = peer.start(f"benchpeer{os.getpid()}")
        took = time.perf_counter() - start
        p.stop()
        return took

    def nodedown(self) -> float:
        p = peer.start(f"benchvictim{os.getpid()}")
        Node.monitor(p.node)
        start = time.perf_counter()
        os.kill(p.os_pid, signal.SIGKILL)
        receive(timeout=5, match=lambda m: m == ("nodedown", p.node))
        took = time.perf_counter() - start
        p.stop()
        return took

    def close(self):
        self.peer.stop()
        Node.stop()


# ---------------------------------------------------------------- workloads

def _latencies(call, n: int) -> list[float]:
    out, clock = [], time.perf_counter
    for _ in range(n):
        start = clock()
        call()
        out.append(clock() - start)
    return out


def rpc_round_trip(c, n):
    lat = sorted(_latencies(c.rpc, n))
    return statistics.median(lat) * 1e6, lat[int(len(lat) * 0.99)] * 1e6


def msg_round_trip(c, n):
    lat = sorted(_latencies(lambda: c.echo(MESSAGE), n))
    return statistics.median(lat) * 1e6, lat[int(len(lat) * 0.99)] * 1e6


def oneway(c, n):
    start = time.perf_counter()
    send = c.oneway
    for _ in range(n):
        send(MESSAGE)
    got = c.done()
    assert got == n, f"{got} of {n} messages arrived"
    return n / (time.perf_counter() - start)


def bulk(c, n):
    blob = os.urandom(1 << 20)
    start = time.perf_counter()
    for _ in range(n):
        c.oneway(("blob", blob))
    assert c.done() == n
    return n / (time.perf_counter() - start)


def notebooks_seconds() -> float:
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "notebooks"], cwd=HERE.parent, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("the notebook suite failed:\n" + r.stdout[-2000:])
    return time.perf_counter() - start


# ---------------------------------------------------------------- the run

def _versions() -> str:
    names = ["multiprocess", "dill", "pyro5", "rpyc", "pyzmq", "nbval"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def run(rounds: int, quick: bool) -> str:
    scale = 0.2 if quick else 1.0
    n_rpc, n_oneway, n_bulk = int(2000 * scale), int(100_000 * scale), int(200 * scale)
    contenders = {"floor": _Connection("floor"), "multiprocess": _Connection("multiprocess"),
                  "pydist": _Pydist()}
    for name, cls in (("Pyro5", _Pyro5), ("RPyC", _Rpyc), ("pyzmq", _Zmq)):
        try:
            contenders[name] = cls()
        except ImportError:
            print(f"{name} is not installed: skipped (pip install -e '.[bench]')")
    samples: dict[tuple[str, str], list] = {}

    def record(workload, name, value):
        samples.setdefault((workload, name), []).append(value)

    try:
        for r in range(rounds):
            print(f"round {r + 1}/{rounds}", flush=True)
            for name, c in contenders.items():
                record("rpc", name, rpc_round_trip(c, n_rpc))
            for name in ("floor", "multiprocess", "pydist"):
                c = contenders[name]
                record("msg", name, msg_round_trip(c, n_rpc))
                record("oneway", name, oneway(c, n_oneway))
                record("bulk", name, bulk(c, n_bulk))
                record("connect", name, statistics.median(
                    [c.first_connect() for _ in range(10)]) * 1e3)
            record("peer", "pydist", statistics.median(
                [contenders["pydist"].peer_start() for _ in range(3)]))
            record("nodedown", "pydist", statistics.median(
                [contenders["pydist"].nodedown() * 1e3 for _ in range(3)]))
    finally:
        for c in contenders.values():
            c.close()
    if not quick:
        record("notebooks", "pydist", notebooks_seconds())
    return _report(samples, rounds, quick)


WORKLOADS = [  # key, title, unit, higher is better, target on the pydist/floor ratio or value
    ("rpc", "rpc round trip (median µs; p99)", "µs", False, ("ratio", 1.3)),
    ("msg", "message round trip (median µs; p99)", "µs", False, ("ratio", 1.3)),
    ("oneway", "one-way throughput (messages/s)", "msg/s", True, ("ratio", 1.0)),
    ("bulk", "bulk 1 MiB messages (MiB/s)", "MiB/s", True, ("ratio", 1.0)),
    ("connect", "first connect, authentication included (ms)", "ms", False, ("value", 5.0)),
    ("peer", "peer.start until it answers (s)", "s", False, ("value", 0.3)),
    ("nodedown", "nodedown after kill -9 (ms)", "ms", False, ("value", 50.0)),
    ("notebooks", "the notebook suite under nbval (s)", "s", False, ("value", 60.0)),
]


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _report(samples, rounds: int, quick: bool) -> str:
    lines = [
        "# pydist benchmark results", "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- Python {platform.python_version()}; {_versions()}",
        f"- command: `python -m bench --rounds {rounds}{' --quick' if quick else ''}` "
        f"(interleaved rounds; median over rounds, min–max in brackets; ratios to the floor "
        f"taken round by round)",
        "- floor: stdlib `multiprocessing.connection` Listener/Client with authkey (C pickle)",
        "", "| workload | contender | median | min–max | vs floor | Erlang | target | holds |",
        "|---|---|---|---|---|---|---|---|"]
    verdicts: list[tuple[str, bool]] = []
    for key, title, unit, higher, (kind, goal) in WORKLOADS:
        floor = samples.get((key, "floor"))
        for (workload, name), values in samples.items():
            if workload != key:
                continue
            main = [v[0] if isinstance(v, tuple) else v for v in values]
            p99 = [v[1] for v in values] if isinstance(values[0], tuple) else None
            median = statistics.median(main)
            spread = f"{_fmt(min(main))}–{_fmt(max(main))}"
            shown = _fmt(median) + (f" (p99 {_fmt(statistics.median(p99))})" if p99 else "")
            ratio = ""
            if floor and name != "floor":
                fmain = [v[0] if isinstance(v, tuple) else v for v in floor]
                ratios = [m / f for m, f in zip(main, fmain, strict=True)]
                ratio = f"{statistics.median(ratios):.2f}×"
            target = holds = ""
            if name == "pydist":
                if kind == "ratio":
                    r = statistics.median([m / f for m, f in zip(main, fmain, strict=True)])
                    ok = r >= goal if higher else r <= goal
                    target = f"{'≥' if higher else '≤'} {goal}× floor"
                    if key in ("rpc",):
                        others = [statistics.median([v[0] for v in samples[(key, o)]])
                                  for o in ("Pyro5", "RPyC", "pyzmq") if (key, o) in samples]
                        ok = ok and all(median < o for o in others)
                        target += ", below Pyro5/RPyC/pyzmq"
                else:
                    ok = median <= goal
                    target = f"≤ {goal:g} {unit}"
                holds = "yes" if ok else "**no**"
                verdicts.append((title, ok))
            lines.append(f"| {title} | {name} | {shown} | {spread} | {ratio} | "
                         f"{ERLANG[key] if name == 'pydist' else ''} | {target} | {holds} |")
    held = [t for t, ok in verdicts if ok]
    missed = [t for t, ok in verdicts if not ok]
    lines += ["", "## Targets", "",
              f"- hold: {'; '.join(held) or 'none'}",
              f"- missed: {'; '.join(missed) or 'none'}", "", ANALYSIS]
    return "\n".join(lines) + "\n"


ANALYSIS = """## Why the round trips miss, and what would close the gap

The floor is one thread per side blocked in `recv`: a request wakes the server's
thread, the reply wakes the client's. A pydist process is a thread with a mailbox,
fed by the connection's reader thread, so a message round trip also wakes the
receiving process on each side (two more thread hand-offs, each paying a GIL hand-over
on a 2-core machine), and an rpc call wakes the caller once more. Serving rpc calls
inside the reader (no hand-off on the serving side), batching streamed sends in one
writer thread per connection and writing frames without copying them brought bulk
transfers above the floor and one-way throughput close to it (0.8-1.3x from run to
run on this machine: the sender, its writer thread, the reader and the receiving
process share two cores), but a round trip still costs two to five times the
floor's.

The hand-offs are not the main cost. An experiment in which the waiting process reads
its own reply from the socket (a leader/follower reader: no hand-off on the calling
side for about 80% of replies) left the rpc round trip where it was, about 200 µs.
Measured with thread CPU time, the calling side spends about 100 µs of CPU per rpc
on this machine once the process has slept between calls: many small Python steps
(encode, frame, write, poll, read, decode, dispatch, wake), each slow when the caches
are cold. The floor does a handful of them per message. Closing the gap needs a much
thinner hot path: fewer Python-level steps per message, and perhaps a small compiled
framing and dispatch loop. That is the next step; the figures above are what the
current design does."""


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="fewer messages per round, no notebook run; RESULTS.md untouched")
    args = parser.parse_args()
    table = run(args.rounds, args.quick)
    print(table)
    if not args.quick:
        (HERE / "RESULTS.md").write_text(table)
        print(f"written to {HERE / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
