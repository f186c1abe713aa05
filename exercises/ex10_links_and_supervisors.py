"""Exercise 10 · Links and supervisors (notebook 10_links_and_supervisors.ipynb)

This process is already a node when the checks call your functions.

Tasks
  1. exit_reason(fun, *args): run fun in a linked process; return the reason it ended with.
  2. kill_for_good(name): end the process registered as `name`, though it traps exits.
  3. StockServer: the article's stock as a GenServer ("status", ("add", p), ("take", p)).
  4. supervise(server, name, initial, restarts): restart a GenServer each time it dies.
  5. ticker(target, every): ("tick", 1), ("tick", 2)... to target, a killable sleep between.

Check your work: python3 course.py check 10   (stuck on task 2? add --hint 2)
"""

from pydist import Process, receive, send, spawn_link
from pydist.gen_server import GenServer


def exit_reason(fun, *args, timeout: float = 2.0):
    """Task 1. Run fun(*args) in a process linked to this one, and return the reason it
    ended with, from its ("EXIT", pid, reason) message: "normal" if fun returned, the
    exception if it raised. This process must live on (trap exits), and trap exits
    afterwards only if it did before: Process.flag returns the old value.

    exit_reason(int, "x") -> ValueError("invalid literal for int() with base 10: 'x'")
    """
    raise NotImplementedError("Task 1: not done yet (read its docstring; the checker gives hints)")


def kill_for_good(name: str, timeout: float = 2.0):
    """Task 2. End the process registered as `name`, even though it traps exits, and
    return the reason its monitor reports ("killed"), taking that DOWN message from the
    mailbox. kill_for_good("stubborn") -> "killed"."""
    raise NotImplementedError("Task 2: not done yet (read its docstring; the checker gives hints)")


class StockServer(GenServer):
    """Task 3. The article's stock as a GenServer; its state is the list of products.

    init(stock)                      -> ("ok", stock)
    handle_call("status", ...)       -> reply the stock
    handle_call(("add", p), ...)     -> the stock becomes [p] + stock; reply it
    handle_call(("take", p), ...)    -> p taken out of the stock; reply the new stock;
                                        raise ValueError(f"no {p} in stock") if it has none
    """
    def init(self, stock):
        raise NotImplementedError("Task 3: not done yet (read its docstring; the checker gives hints)")

    def handle_call(self, request, from_, stock):
        raise NotImplementedError("Task 3: not done yet (read its docstring; the checker gives hints)")


def supervise(server, name: str, initial, restarts: int) -> int:
    """Task 4. A supervisor: start server (a GenServer class) linked to this process,
    registered as `name`, with `initial` as its argument (server.start_link(initial,
    name=name)); each time it dies, start a new one the same way. Once `restarts`
    restarts are made, return restarts (the last server runs on)."""
    raise NotImplementedError("Task 4: not done yet (read its docstring; the checker gives hints)")


def ticker(target, every: float) -> None:
    """Task 5. A process's function: for ever, wait `every` seconds, then send
    ("tick", n) to target, n = 1, 2, 3... Wait so that a kill stops it at once,
    even in the middle of a long wait."""
    raise NotImplementedError("Task 5: not done yet (read its docstring; the checker gives hints)")
