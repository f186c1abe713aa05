"""Exercise 09 · Python meets the BEAM (notebook 09_python_meets_the_beam.ipynb)

This process is already a node when the checks call your functions, and the checks
start a real Elixir node running the article's ProductStock (registered as :server).

Tasks
  1. status_request(sender): the message ProductStock's `{:status, from}` clause matches.
  2. add_product(server_node, product): add `product` to the stock over there; return
     the updated stock it sends back.
  3. elixir_upcase(node, text): `String.upcase(text)` computed on the Elixir node.
  4. watch(pid): wait until the Elixir process `pid` ends; return its exit reason.

Check your work: python3 course.py check 09   (stuck on task 2? add --hint 2)
"""

from pydist import Atom, Process, receive, rpc, self, send


def status_request(sender):
    """Task 1. status_request(pid) -> the tuple Elixir writes {:status, pid}: an atom
    first (a Python str would arrive as an Elixir string, which no clause matches)."""
    raise NotImplementedError("Task 1: not done yet (read its docstring; the checker gives hints)")


def add_product(server_node: str, product: dict) -> list:
    """Task 2. add_product("stock@vm", {"name": "nike", "qty": 30}) -> the new stock,
    e.g. [{"name": "nike", "qty": 30}]. Send {:add, self(), product} to the name
    :server there and wait (at most 5 s) for the list it answers."""
    raise NotImplementedError("Task 2: not done yet (read its docstring; the checker gives hints)")


def elixir_upcase(node: str, text: str) -> str:
    """Task 3. elixir_upcase("stock@vm", "hi") -> "HI", by Elixir's String.upcase."""
    raise NotImplementedError("Task 3: not done yet (read its docstring; the checker gives hints)")


def watch(pid):
    """Task 4. Monitor `pid` (a process on the Elixir node) and return the reason of
    its DOWN message (e.g. Atom("killed")); wait at most 5 s."""
    raise NotImplementedError("Task 4: not done yet (read its docstring; the checker gives hints)")
