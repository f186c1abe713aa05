"""Exercise 08 · When nodes fail (notebook 08_when_nodes_fail.ipynb)

This process is already a node when the checks call your functions.

Tasks
  1. call_any(nodes, *args): the first node that answers wins; BadRpc if none does.
  2. wait_nodedown(node, timeout): True once `node` is lost, False if it is still up.
  3. supervise(name, fun, args, restarts): keep `fun` running under `name`.

Check your work: python3 course.py check 08   (stuck on task 2? add --hint 2)
"""

from pydist import BadRpc, Node, Process, receive, rpc, spawn


def call_any(nodes: list[str], *args):
    """Task 1. call_any(["gone@vm", "b@vm"], "pydist", "Node.self", []) -> "b@vm".
    A node that does not answer within 2 s is passed over; when no node answers,
    raise BadRpc."""
    raise NotImplementedError("Task 1: not done yet (read its docstring; the checker gives hints)")


def wait_nodedown(node: str, timeout: float = 2.0) -> bool:
    """Task 2. True if ("nodedown", node) arrives within `timeout` seconds, else False."""
    raise NotImplementedError("Task 2: not done yet (read its docstring; the checker gives hints)")


def supervise(name: str, fun, args: list, restarts: int) -> int:
    """Task 3. Run fun(*args) as a process registered as `name`; each time it dies, start
    and register a new one; after `restarts` restarts, return restarts."""
    raise NotImplementedError("Task 3: not done yet (read its docstring; the checker gives hints)")
