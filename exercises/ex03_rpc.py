"""Exercise 03 · rpc (notebook 03_rpc.ipynb)

This process is already a node when the checks call your functions.

Tasks
  1. remote_upper(node, text): upper-case `text` on `node`, by module and function name.
  2. where_does_it_run(node): run a function of your own on `node`; return that node's name.
  3. call_or(default, node, *args): rpc.call, but return `default` when the call fails.
  4. all_names(): every node's own name (this one and the connected ones), sorted.

Hints
  1. Elixir's `:rpc.call(node, String, :upcase, [text])`; `str` works as a module name.
  2. Define a small function (or a lambda) that returns `Node.self()` and pass it to rpc.call.
  3. Failures raise `BadRpc`; catch that one only.
  4. `rpc.multicall("pydist", "Node.self", [])` calls this node and every connected one.

Check your work: python -m pydist check 03
"""

from pydist import BadRpc, Node, rpc


def remote_upper(node: str, text: str) -> str:
    """Task 1. remote_upper("b@vm", "hello") -> "HELLO", computed on b@vm."""
    raise NotImplementedError("Task 1: not done yet (read the docstring and the hints above)")


def where_does_it_run(node: str) -> str:
    """Task 2. Returns `node`, as reported by code running there."""
    raise NotImplementedError("Task 2: not done yet (read the docstring and the hints above)")


def call_or(default, node: str, *args):
    """Task 3. call_or(0, "b@vm", "operator", "add", [1, 2]) -> 3; when the call raises
    BadRpc (node down, no such function, remote error, timeout) -> default."""
    raise NotImplementedError("Task 3: not done yet (read the docstring and the hints above)")


def all_names() -> list[str]:
    """Task 4. ["a@vm", "b@vm", ...]: the names the nodes give themselves, sorted."""
    raise NotImplementedError("Task 4: not done yet (read the docstring and the hints above)")
