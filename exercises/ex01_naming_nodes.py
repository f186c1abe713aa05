"""Exercise 01 · Naming nodes (notebook 01_naming_nodes.ipynb)

Tasks
  1. node_name(name): the full name `Node.start(name)` would give.
  2. is_long_name(name): tell long names from short ones.
  3. start_and_describe(name, cookie): start a node, look at it, stop it.

Check your work: python3 course.py check 01   (stuck on task 2? add --hint 2)
"""

import socket

from pydist import Node


def node_name(name: str) -> str:
    """Task 1. 'gus' -> 'gus@<this host's short name>'; 'gus@127.0.0.1' stays as it is."""
    raise NotImplementedError("Task 1: not done yet (read its docstring; the checker gives hints)")


def is_long_name(name: str) -> bool:
    """Task 2. True for 'gus@127.0.0.1' or 'gus@host.example', False for 'gus' or 'gus@vm'."""
    raise NotImplementedError("Task 2: not done yet (read its docstring; the checker gives hints)")


def start_and_describe(name: str, cookie: str) -> dict:
    """Task 3. Start this process as node `name` with `cookie`, and return
    {"node": <its full name>, "alive": <Node.alive()>, "cookie": <its cookie>,
     "after": <Node.self() once the node is stopped again>}."""
    raise NotImplementedError("Task 3: not done yet (read its docstring; the checker gives hints)")
