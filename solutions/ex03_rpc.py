"""Exercise 03 · rpc (notebook 03_rpc.ipynb)

This process is already a node when the checks call your functions.

Tasks
  1. remote_upper(node, text): upper-case `text` on `node`, by module and function name.
  2. where_does_it_run(node): run a function of your own on `node`; return that node's name.
  3. call_or(default, node, *args): rpc.call, but return `default` when the call fails.
  4. all_names(): every node's own name (this one and the connected ones), sorted.

Check your work: python3 course.py check 03   (stuck on task 2? add --hint 2)
"""

from pydist import BadRpc, Node, rpc


def remote_upper(node: str, text: str) -> str:
    """Task 1. remote_upper("b@vm", "hello") -> "HELLO", computed on b@vm."""
    # BEGIN SOLUTION 1
    return rpc.call(node, "str", "upper", [text])
    # END SOLUTION


def where_does_it_run(node: str) -> str:
    """Task 2. Returns `node`, as reported by code running there."""
    # BEGIN SOLUTION 2
    return rpc.call(node, lambda: Node.self(), [])
    # END SOLUTION


def call_or(default, node: str, *args):
    """Task 3. call_or(0, "b@vm", "operator", "add", [1, 2]) -> 3; when the call raises
    BadRpc (node down, no such function, remote error, timeout) -> default."""
    # BEGIN SOLUTION 3
    try:
        return rpc.call(node, *args, timeout=2)
    except BadRpc:
        return default
    # END SOLUTION


def all_names() -> list[str]:
    """Task 4. ["a@vm", "b@vm", ...]: the names the nodes give themselves, sorted."""
    # BEGIN SOLUTION 4
    results, _bad = rpc.multicall("pydist", "Node.self", [])
    return sorted(results)
    # END SOLUTION
