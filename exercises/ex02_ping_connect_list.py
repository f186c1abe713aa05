"""Exercise 02 · Ping, connect, list (notebook 02_ping_connect_list.ipynb)

This process is already a node when the checks call your functions.

Tasks
  1. ping_all(nodes): ping every node, return {node: "pong" or "pang"}.
  2. start_mesh(names): start one peer per name; return the peers and this node's sorted list.
  3. wait_for_mesh(node, expected, timeout): wait until `node` knows exactly `expected`.

Hints
  1. `Node.ping(node)` never hangs; a dict comprehension does the rest.
  2. `peer.start(name)` returns a handle with `.node`; peers are connected to us at once.
  3. Ask the other node with `rpc.call(node, Node.list, [])`; compare sorted lists; sleep a
     little between tries; raise `TimeoutError` when the time is up.

Check your work: python -m pydist check 02
"""

import time

from pydist import Node, peer, rpc


def ping_all(nodes: list[str]) -> dict[str, str]:
    """Task 1. {"b@vm": "pong", "nothere@vm": "pang"}"""
    raise NotImplementedError("Task 1: not done yet (read the docstring and the hints above)")


def start_mesh(names: list[str]) -> tuple[list, list[str]]:
    """Task 2. Start a peer per name; return (the peer handles, sorted(Node.list()))."""
    raise NotImplementedError("Task 2: not done yet (read the docstring and the hints above)")


def wait_for_mesh(node: str, expected: list[str], timeout: float = 2.0) -> float:
    """Task 3. Wait until sorted(Node.list()) *on `node`* equals sorted(expected); return
    how many seconds that took. Raise TimeoutError after `timeout` seconds."""
    raise NotImplementedError("Task 3: not done yet (read the docstring and the hints above)")
