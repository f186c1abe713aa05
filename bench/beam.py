"""Round trips between a pydist node and real Elixir nodes, beside Elixir and Elixir.

Run by ``python -m bench`` when Elixir is installed. Two Elixir peers (``peer.start(...,
elixir=True)``), each with an echo process registered as ``:echo``; every figure is the
median of one round trip, in µs, unpinned:

- rpc: ``rpc.call(ex, "erlang", "+", [1, 2])`` from pydist; ``:rpc.call`` from one Elixir
  node to the other; ``:rpc.call(py, :operator, :add, [1, 2])`` from Elixir into pydist;
- msg: ``send`` + ``receive`` to the echo process, from pydist and from the other Elixir node.

``oneway`` streams messages to a counting sink across the border both ways, beside
Elixir to Elixir (messages/s).

The Elixir side times itself with ``:timer.tc`` in a loop on its own node, so the call
that starts the loop is not counted.

``names_and_groups`` times the cluster services in the same three-node cluster (this
node and two Elixir nodes, all members of ``global`` and of the ``pg`` scope):

- global: one ``register_name`` + ``unregister_name`` (a lock and a call on every node)
  from pydist (``Global``) and from Elixir (``:global``);
- pg/join: one ``join`` + ``leave`` (a broadcast to the other scopes);
- pg/members: one ``get_members`` (a local read) of a group of three members.

``exit_signals`` times ``Process.exit(pid, :kill)`` until the monitor's DOWN arrives
(the monitor is set before the clock starts), for a process on the same node and on
another node: pydist → pydist, Python ↔ Elixir both ways, and Elixir → Elixir.
"""

from __future__ import annotations

import shutil
import statistics
import time

from pydist import Atom, Global, Node, Process, peer, pg, receive, rpc, send, spawn
from pydist import self as self_pid

ECHO = """
loop = fn loop -> receive do {from, msg} -> send(from, msg); loop.(loop) end end
Process.register(spawn(fn -> loop.(loop) end), :echo)
"""

# n round trips timed one by one on an Elixir node; prints nothing, returns the median.
TIMED = """
times = for _ <- 1..n, do: elem(:timer.tc(fn -> {call} end), 0)
Enum.at(Enum.sort(times), div(n, 2))
"""


def available() -> bool:
    return shutil.which("elixir") is not None


def _ex(node: str, code: str, **binding):
    variables = [(Atom(k), v) for k, v in binding.items()]
    return rpc.call(node, "Elixir.Code", "eval_string", [code, variables], timeout=60)[0]


def _median_us(call, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def round_trips(n: int) -> dict[tuple[str, str], float]:
    """{(workload, contender): median µs} for the rows described above."""
    one = peer.start(f"benchex1x{id(n) % 10000}", elixir=True)
    two = peer.start(f"benchex2x{id(n) % 10000}", elixir=True)
    try:
        for p in (one, two):
            _ex(p.node, ECHO)
        me, target = Node.self(), Atom(one.node)
        out = {}
        out[("beam/rpc", "pydist → Elixir")] = _median_us(
            lambda: rpc.call(one.node, "erlang", "+", [1, 2]), n)
        out[("beam/rpc", "Elixir → Elixir")] = _ex(two.node, TIMED.format(
            call=":rpc.call(target, :erlang, :+, [1, 2])"), n=n, target=target)
        out[("beam/rpc", "Elixir → pydist")] = _ex(two.node, TIMED.format(
            call=":rpc.call(py, :operator, :add, [1, 2])"), n=n, py=Atom(me))

        def echo():
            send(("echo", one.node), (self_pid(), "ping"))
            return receive(timeout=5)
        out[("beam/msg", "pydist ↔ Elixir")] = _median_us(echo, n)
        out[("beam/msg", "Elixir ↔ Elixir")] = _ex(two.node, TIMED.format(
            call='(send({:echo, target}, {self(), "ping"}); receive do m -> m end)'),
            n=n, target=target)
        return out
    finally:
        two.stop()
        one.stop()


FLOOD = """
defmodule BenchFlood do
  def run(to, n) do
    msg = {:add, %{"name" => "nike", "qty" => 30}}
    t = System.monotonic_time(:microsecond)
    loop(to, msg, n)
    send(to, {:done, self()})
    receive do c when is_integer(c) -> n / (System.monotonic_time(:microsecond) - t) * 1.0e6 end
  end
  defp loop(_, _, 0), do: :ok
  defp loop(to, msg, n), do: (send(to, msg); loop(to, msg, n - 1))
  def sink(c) do
    receive do
      {:done, from} -> send(from, c); sink(0)
      _ -> sink(c + 1)
    end
  end
end
Process.register(spawn(fn -> BenchFlood.sink(0) end), :sink)
"""


def oneway(n: int, sink) -> dict[tuple[str, str], float]:
    """{("beam/oneway", contender): messages/s}: ``n`` messages of the one-way workload's
    shape, ``{:add, %{"name" => "nike", "qty" => 30}}``, streamed to a counting sink
    (compiled Elixir on the BEAM side; ``sink``, the one-way workload's, on this node),
    timed until the sink's count comes back."""
    one = peer.start(f"benchex8x{id(n) % 10000}", elixir=True)
    two = peer.start(f"benchex9x{id(n) % 10000}", elixir=True)
    sink = spawn(sink)
    Process.register(sink, "bench_sink")
    try:
        for p in (one, two):
            _ex(p.node, FLOOD)
        msg = (Atom("add"), {"name": "nike", "qty": 30})
        start = time.perf_counter()
        for _ in range(n):
            send(("sink", one.node), msg)
        send(("sink", one.node), (Atom("done"), self_pid()))
        assert receive(timeout=60) == n
        out = {("beam/oneway", "pydist → Elixir"): n / (time.perf_counter() - start)}
        out[("beam/oneway", "Elixir → pydist")] = _ex(
            two.node, "BenchFlood.run({:bench_sink, py}, n)", n=n, py=Atom(Node.self()))
        out[("beam/oneway", "Elixir → Elixir")] = _ex(
            two.node, "BenchFlood.run({:sink, target}, n)", n=n, target=Atom(one.node))
        return out
    finally:
        Process.exit(sink, "kill")
        two.stop()
        one.stop()


def names_and_groups(n: int) -> dict[tuple[str, str], float]:
    """{(workload, contender): median µs} for global and pg (see the docstring)."""
    one = peer.start(f"benchex3x{id(n) % 10000}", elixir=True)
    two = peer.start(f"benchex4x{id(n) % 10000}", elixir=True)
    try:
        for p in (one, two):
            _ex(p.node, "{:ok, _} = :pg.start(:pg); :global.sync()")
        mine = spawn(receive)
        out = {}

        def register():
            Global.register_name("bench_name", mine)
            Global.unregister_name("bench_name")
        out[("global/register", "pydist")] = _median_us(register, n)
        out[("global/register", "Elixir")] = _ex(one.node, TIMED.format(
            call="(:yes = :global.register_name(:bench_name, self()); "
                 ":global.unregister_name(:bench_name))"), n=n)

        def join():
            pg.join("bench_group", mine)
            pg.leave("bench_group", mine)
        out[("pg/join", "pydist")] = _median_us(join, n)
        out[("pg/join", "Elixir")] = _ex(one.node, TIMED.format(
            call="(:pg.join(:bench_group, self()); :pg.leave(:bench_group, self()))"), n=n)
        pg.join("bench_members", mine)
        for p in (one, two):
            _ex(p.node, ":pg.join(:bench_members, spawn(fn -> Process.sleep(:infinity) end))")
        out[("pg/members", "pydist")] = _median_us(lambda: pg.get_members("bench_members"), n)
        out[("pg/members", "Elixir")] = _ex(one.node, TIMED.format(
            call=":pg.get_members(:bench_members)"), n=n)
        send(mine, "stop")
        return out
    finally:
        two.stop()
        one.stop()


# Elixir: kill a sleeping process of `where` (a node) n times; median µs kill -> DOWN.
KILLS = """
times = for _ <- 1..n do
  pid = Node.spawn(where, :pydist, :"Process.sleep", [60])
  ref = Process.monitor(pid)
  t = System.monotonic_time(:microsecond)
  Process.exit(pid, :kill)
  receive do {:DOWN, ^ref, _, _, :killed} -> System.monotonic_time(:microsecond) - t end
end
Enum.at(Enum.sort(times), div(n, 2))
"""


def _kills(pids: list) -> float:
    """Median µs from Process.exit(pid, "kill") to its DOWN, monitor set beforehand."""
    times = []
    for pid in pids:
        ref = Process.monitor(pid)
        start = time.perf_counter()
        Process.exit(pid, "kill")
        receive(timeout=5, match=lambda m, r=ref: m[0] == "DOWN" and m[1] == r)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def exit_signals(n: int) -> dict[tuple[str, str], float]:
    """{(workload, contender): median µs} kill -> DOWN (see the docstring)."""
    one = peer.start(f"benchex5x{id(n) % 10000}", elixir=True)
    two = peer.start(f"benchex6x{id(n) % 10000}", elixir=True)
    far = peer.start(f"benchpy7x{id(n) % 10000}")
    try:
        out = {("kill/local", "pydist"): _kills([spawn(Process.sleep, 60) for _ in range(n)])}
        out[("kill/local", "Elixir")] = _ex(one.node, KILLS.replace(
            "Node.spawn(where, :pydist, :\"Process.sleep\", [60])",
            "spawn(fn -> Process.sleep(:infinity) end)"), n=n)
        out[("kill/across", "pydist")] = _kills(
            [Node.spawn(far.node, Process.sleep, 60) for _ in range(n)])
        out[("kill/across", "Elixir → Python")] = _ex(one.node, KILLS, n=n,
                                                      where=Atom(Node.self()))
        sleepers = _ex(one.node, "for _ <- 1..n, do: spawn(fn -> Process.sleep(:infinity) end)",
                       n=n)
        out[("kill/across", "Python → Elixir")] = _kills(sleepers)
        out[("kill/across", "Elixir")] = _ex(one.node, KILLS.replace(
            "Node.spawn(where, :pydist, :\"Process.sleep\", [60])",
            "Node.spawn(where, fn -> Process.sleep(:infinity) end)"), n=n,
            where=Atom(two.node))
        return out
    finally:
        far.stop()
        two.stop()
        one.stop()
