"""The article's stock central at workshop scale, pydist beside Elixir.

A central node runs 4 rooms: stock processes registered as ``room0``..``room3``, each
answering ``{from, :ask, product}`` with the quantity it holds. Another node starts 25
customers per room (100 processes), each asking its room 20 times and waiting for each
answer (2,000 asks); the figure is the seconds from the first spawn to the last
customer's end, median of ``n`` runs. The same with two Elixir nodes (a compiled module
on each), and with pydist's light processes as rooms and customers.
"""

from __future__ import annotations

import statistics
import time

from pydist import Atom, Process, peer, receive, rpc, send, spawn
from pydist import self as self_pid

ROOMS, CUSTOMERS, ASKS = 4, 25, 20

ELIXIR = """
defmodule BenchWorkshop do
  def room(stock) do
    receive do
      {from, :ask, product} -> send(from, Map.get(stock, product, 0)); room(stock)
    end
  end
  def start_rooms(n) do
    for i <- 0..(n - 1), do: Process.register(spawn(fn -> room(%{"nike" => 30}) end),
                                              String.to_atom("room#{i}"))
    :ok
  end
  def run(central, rooms, customers, asks) do
    me = self()
    t = System.monotonic_time(:microsecond)
    for r <- 0..(rooms - 1), _ <- 1..customers do
      room = {String.to_atom("room#{r}"), central}
      spawn(fn -> for _ <- 1..asks, do: (send(room, {self(), :ask, "nike"})
                                        receive do _ -> :ok end)
                  send(me, :done) end)
    end
    for _ <- 1..(rooms * customers), do: (receive do :done -> :ok end)
    (System.monotonic_time(:microsecond) - t) / 1.0e6
  end
end
"""


def _room(stock: dict):
    while True:
        sender, _, product = receive()
        send(sender, stock.get(product, 0))


def _start_rooms(n: int, light: bool) -> None:
    for i in range(n):
        name = f"room{i}"
        if Process.whereis(name):
            Process.exit(Process.whereis(name), "kill")
            Process.unregister(name) if Process.whereis(name) else None
        Process.register(spawn(_room, {"nike": 30}, light=light), name)


def _pydist_once(central: str, light: bool) -> float:
    me = self_pid()

    def customer(room):                      # as the Elixir one: no time limit here,
        for _ in range(ASKS):                 # the wait for "done" below has one
            send(room, (self_pid(), "ask", "nike"))
            receive()
        send(me, "done")
    start = time.perf_counter()
    for r in range(ROOMS):
        for _ in range(CUSTOMERS):
            spawn(customer, (f"room{r}", central), light=light)
    for _ in range(ROOMS * CUSTOMERS):
        receive(timeout=60, match=lambda m: m == "done")
    return time.perf_counter() - start


def workshop(n: int, elixir: bool) -> dict[tuple[str, str], float]:
    """{("workshop", contender): median seconds}."""
    out = {}
    with peer.start(f"benchcentral{time.monotonic_ns() % 10**6}") as central:
        for light, name in ((False, "pydist"), (True, "pydist, light processes")):
            rpc.call(central.node, _start_rooms, [ROOMS, light])
            out[("workshop", name)] = statistics.median(
                _pydist_once(central.node, light) for _ in range(n))
    if elixir:
        from .beam import _ex
        one = peer.start(f"benchshop1x{time.monotonic_ns() % 10**6}", elixir=True)
        two = peer.start(f"benchshop2x{time.monotonic_ns() % 10**6}", elixir=True)
        try:
            for p in (one, two):
                _ex(p.node, ELIXIR)
            _ex(one.node, "BenchWorkshop.start_rooms(4)")
            out[("workshop", "Elixir")] = statistics.median(
                _ex(two.node, "BenchWorkshop.run(central, 4, 25, 20)", central=Atom(one.node))
                for _ in range(n))
        finally:
            two.stop()
            one.stop()
    return out
