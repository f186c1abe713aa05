"""Exercise 11 · Names across the cluster (notebook 11_names_across_the_cluster.ipynb)

This process is already a node when the checks call your functions, and the checks
start a real Elixir node that runs `global` and a `pg` scope, as every node there does.

Tasks
  1. register_everywhere(name, pid): give `pid` a global name; True if it got it.
  2. where(name, node): the pid that the Elixir node `node` finds under the global `name`.
  3. chat_member(): a process loop: to each ("chat", sender, text) it answers
     (Atom("heard"), this node's name as an Atom, text); run it with spawn and pg.join.
  4. ask_room(group, text): send (Atom("chat"), self(), text) to every member of the pg
     `group`, on every node; return the sorted list of the node names that answered.

Check your work: python3 course.py check 11   (stuck on task 2? add --hint 2)
"""

from pydist import Atom, Global, Node, pg, receive, rpc, self, send


def register_everywhere(name: str, pid) -> bool:
    """Task 1. register_everywhere("greeter", pid) -> True, or False when that name
    (or that pid) already has another one: Elixir's :global.register_name answers
    :yes or :no."""
    raise NotImplementedError("Task 1: not done yet (read its docstring; the checker gives hints)")


def where(name: str, node: str):
    """Task 2. where("greeter", "ex@vm") -> the pid the Elixir node `node` finds with
    :global.whereis_name(:greeter), asked over there by rpc; None for its :undefined."""
    raise NotImplementedError("Task 2: not done yet (read its docstring; the checker gives hints)")


def chat_member():
    """Task 3. A chat room member: forever, answer each ("chat", sender, text) with
    (Atom("heard"), Atom(Node.self()), text) sent to sender. Ignore other messages."""
    raise NotImplementedError("Task 3: not done yet (read its docstring; the checker gives hints)")


def ask_room(group: str, text: str) -> list[str]:
    """Task 4. ask_room("room", "hi") -> e.g. ["ex@vm", "py@vm"]: send (Atom("chat"),
    self(), text) to each member of the pg group, wait (2 s at most) for one
    ("heard", node, text) per member, and return the sorted node names as str."""
    raise NotImplementedError("Task 4: not done yet (read its docstring; the checker gives hints)")
