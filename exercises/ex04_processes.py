"""Exercise 04 · Processes (notebook 04_processes.ipynb)

Tasks
  1. counter(): a process that counts "inc" messages and answers ("get", sender).
  2. handle_stock(stock): the article's ProductStock loop, answering ("status", sender).
  3. start_stock(name): spawn handle_stock with an empty stock and register it as `name`.
  4. stock_of(dest, timeout): ask a stock process for its stock and return the answer.

Hints
  1. `while True:` and `match receive():` with the cases "inc" and ("get", sender);
     `send(sender, count)` answers.
  2. New products go in front: `stock = [product] + stock`, as `[product] ++ stock` in Elixir.
  3. `spawn(fun, *args)` and `Process.register(pid, name)`; return the pid.
  4. `send(dest, ("status", self()))`, then `receive(timeout=timeout)`; `dest` may be a local
     name or a ("name", "node@host") pair: `send` takes both.

Check your work: python -m pydist check 04
"""

from pydist import Process, receive, self, send, spawn


def counter() -> None:
    """Task 1. Starts at 0; "inc" adds one; ("get", sender) sends the count to sender."""
    raise NotImplementedError("Task 1: not done yet (read the docstring and the hints above)")


def handle_stock(stock: list) -> None:
    """Task 2. ("add", product) puts product in front of the stock;
    ("status", sender) sends the stock (a list) to sender."""
    raise NotImplementedError("Task 2: not done yet (read the docstring and the hints above)")


def start_stock(name: str):
    """Task 3. Returns the pid of a new handle_stock([]) process registered as `name`."""
    raise NotImplementedError("Task 3: not done yet (read the docstring and the hints above)")


def stock_of(dest, timeout: float = 1.0) -> list:
    """Task 4. stock_of("product_stock") -> [{"name": "nike", "qty": 30}, ...]"""
    raise NotImplementedError("Task 4: not done yet (read the docstring and the hints above)")
