"""Exercise 02 · Ping, connect, list (notebook 02_ping_connect_list.ipynb)

This process is already a node when the checks call your functions.

Tasks
  1. ping_all(nodes): ping every node, return {node: "pong" or "pang"}.
  2. start_mesh(names): start one peer per name; return the peers and this node's sorted list.
  3. wait_for_mesh(node, expected, timeout): wait until `node` knows exactly `expected`.

Check your work: python3 course.py check 02   (stuck on task 2? add --hint 2)
"""

import time

from pydist import Node, peer, rpc


def ping_all(nodes: list[str]) -> dict[str, str]:
    """Task 1. {"b@vm": "pong", "nothere@vm": "pang"}"""
    # BEGIN SOLUTION 1
    return {node: Node.ping(node) for node in nodes}
    # END SOLUTION


def start_mesh(names: list[str]) -> tuple[list, list[str]]:
    """Task 2. Start a peer per name; return (the peer handles, sorted(Node.list()))."""
    # BEGIN SOLUTION 2
    peers = [peer.start(name) for name in names]
    return peers, sorted(Node.list())
    # END SOLUTION


def wait_for_mesh(node: str, expected: list[str], timeout: float = 2.0) -> float:
    """Task 3. Wait until sorted(Node.list()) *on `node`* equals sorted(expected); return
    how many seconds that took. Raise TimeoutError after `timeout` seconds."""
    # BEGIN SOLUTION 3
    start = time.monotonic()
    while sorted(rpc.call(node, Node.list, [], timeout=timeout)) != sorted(expected):
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{node} did not know {expected} within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start
    # END SOLUTION
