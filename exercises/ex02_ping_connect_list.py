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
    raise NotImplementedError("Task 1: not done yet (read its docstring; the checker gives hints)")


def start_mesh(names: list[str]) -> tuple[list, list[str]]:
    """Task 2. Start a peer per name; return (the peer handles, sorted(Node.list()))."""
    raise NotImplementedError("Task 2: not done yet (read its docstring; the checker gives hints)")


def wait_for_mesh(node: str, expected: list[str], timeout: float = 2.0) -> float:
    """Task 3. Wait until sorted(Node.list()) *on `node`* equals sorted(expected); return
    how many seconds that took. Raise TimeoutError after `timeout` seconds."""
    raise NotImplementedError("Task 3: not done yet (read its docstring; the checker gives hints)")
