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
    # BEGIN SOLUTION 1
    for node in nodes:
        try:
            return rpc.call(node, *args, timeout=2)
        except BadRpc:
            continue
    raise BadRpc("nodedown", ",".join(nodes), "no node could answer")
    # END SOLUTION


def wait_nodedown(node: str, timeout: float = 2.0) -> bool:
    """Task 2. True if ("nodedown", node) arrives within `timeout` seconds, else False."""
    # BEGIN SOLUTION 2
    Node.monitor(node)
    try:
        receive(timeout=timeout, match=lambda m: m == ("nodedown", node))
        return True
    except TimeoutError:
        return False
    # END SOLUTION


def supervise(name: str, fun, args: list, restarts: int) -> int:
    """Task 3. Run fun(*args) as a process registered as `name`; each time it dies, start
    and register a new one; after `restarts` restarts, return restarts."""
    # BEGIN SOLUTION 3
    made = 0
    while True:
        pid = spawn(fun, *args)
        Process.register(pid, name)
        if made == restarts:
            return made
        ref = Process.monitor(pid)
        receive(match=lambda m: isinstance(m, tuple) and m[:2] == ("DOWN", ref))  # noqa: B023
        made += 1
    # END SOLUTION
