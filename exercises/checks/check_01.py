"""Checks for exercise 01 · Naming nodes."""
import socket

from pydist import Node
from pydist._exercises import expect, unique

HOST = socket.gethostname().split(".")[0]


def task1(ex):
    expect(ex.node_name("gus"), f"gus@{HOST}", "node_name('gus')")
    expect(ex.node_name("gus@127.0.0.1"), "gus@127.0.0.1", "node_name('gus@127.0.0.1')")


def task2(ex):
    for name, long in [("gus", False), (f"gus@{HOST}", False), ("gus@127.0.0.1", True),
                       ("gus@host.example", True)]:
        expect(ex.is_long_name(name), long, f"is_long_name({name!r})")


def task3(ex):
    name = unique("check01x")
    got = ex.start_and_describe(name, "secret")
    expect(got, {"node": f"{name}@{HOST}", "alive": True, "cookie": "secret",
                 "after": "nonode@nohost"}, f"start_and_describe({name!r}, 'secret')")
    assert not Node.alive(), "start_and_describe left this process running as a node"


TASKS = [("node_name gives the full name", task1),
         ("is_long_name tells long from short", task2),
         ("start_and_describe starts, looks and stops", task3)]
