"""Checks for exercise 04 · Processes."""
import re
import sys

from pydist import Process, self, send, spawn
from pydist._exercises import ask, expect, source_of

NIKE = {"name": "nike", "qty": 30}
ADIDAS = {"name": "adidas", "qty": 35}


def task1(ex):
    pid = spawn(ex.counter)
    expect(ask(pid, ("get", self()), called="counter() then ('get', me)"), 0,
           "counter() then ('get', me)")
    for _ in range(3):
        send(pid, "inc")
    got = ask(pid, ("get", self()), called="three 'inc' then ('get', me)")
    if got == 0:
        why = ("The message is the Python str \"inc\": match exactly that (`case \"inc\":`, "
               "not \":inc\" or Atom(\"inc\"), Elixir's spelling)"
               if re.search(r"[\"']:inc|Atom\(", source_of(ex.counter)) else
               "Does counter keep the count from one message to the next (count = 0 before "
               "the loop, count += 1 in it)?")
        raise AssertionError(f"called three 'inc' then ('get', me), expected 3, got 0: none "
                             f"of the three was counted. {why}")
    expect(got, 3, "three 'inc' then ('get', me)")


def task2(ex):
    pid = spawn(ex.handle_stock, [])
    send(pid, ("add", NIKE))
    send(pid, ("add", ADIDAS))
    expect(ask(pid, ("status", self()), called="handle_stock([]), two adds, then status"),
           [ADIDAS, NIKE], "handle_stock([]) with ('add', nike), ('add', adidas), ('status', me)")
    # more adds than Python's recursion limit: Elixir's loop calls itself, Python's cannot
    many = min(sys.getrecursionlimit(), 5000) + 100
    pid = spawn(ex.handle_stock, [])
    for n in range(many):
        send(pid, ("add", {"name": f"p{n}", "qty": n}))
    got = ask(pid, ("status", self()), called=f"handle_stock([]), {many} adds, then status")
    expect(len(got) if isinstance(got, list) else got, many,
           f"handle_stock([]), {many} adds, then status, and counted the answer's length")


def task3(ex):
    pid = ex.start_stock("stock_t3")
    expect(pid, Process.whereis("stock_t3"), "start_stock('stock_t3'), which returns the pid "
                                             "it registered as 'stock_t3'")
    send("stock_t3", ("add", NIKE))
    expect(ask("stock_t3", ("status", self()), called="start_stock then status"), [NIKE],
           "start_stock('stock_t3'), ('add', nike), ('status', me)")


def task4(ex):
    def stock():
        from pydist import receive
        while True:
            msg = receive()
            send(msg[1], [NIKE])
    Process.register(spawn(stock), "stock_t4")
    expect(ex.stock_of("stock_t4"), [NIKE], "stock_of('stock_t4')")
    try:
        ex.stock_of(spawn(lambda: None), timeout=0.3)
    except TimeoutError:
        return
    raise AssertionError("called stock_of(a dead pid, timeout=0.3), expected TimeoutError")


TASKS = [("counter counts and answers", task1),
         ("handle_stock adds in front and answers status", task2),
         ("start_stock spawns and registers", task3),
         ("stock_of asks and waits with a timeout", task4)]
