"""Checks for exercise 08 · When nodes fail."""
import os
import signal
import threading
import time

from pydist import BadRpc, Node, Process, peer, receive, send, spawn
from pydist._exercises import expect, unique

NODE = True


def task1(ex):
    gone = f"gone@{Node.self().split('@')[1]}"
    with peer.start(unique("alive")) as alive:
        expect(ex.call_any([gone, alive.node], "pydist", "Node.self", []), alive.node,
               f"call_any([{gone!r}, {alive.node!r}], 'pydist', 'Node.self', [])")
    try:
        ex.call_any([gone], "pydist", "Node.self", [])
    except BadRpc:
        return
    raise AssertionError(f"called call_any([{gone!r}], ...), expected BadRpc, got a return")


def task2(ex):
    with peer.start(unique("doomed")) as doomed:
        expect(ex.wait_nodedown(doomed.node, 0.3), False, "wait_nodedown(a live node, 0.3)")
        threading.Timer(0.2, os.kill, [doomed.os_pid, signal.SIGKILL]).start()
        started = time.monotonic()
        expect(ex.wait_nodedown(doomed.node, 3), True,
               "wait_nodedown(a node killed after 0.2 s, 3)")
        assert time.monotonic() - started < 2, "wait_nodedown took too long to notice"


def _fragile():
    receive()
    raise RuntimeError("crash on purpose")


def task3(ex):
    result = []
    sup = spawn(lambda: result.append(ex.supervise("fragile_t", _fragile, [], 2)))
    ref = Process.monitor(sup)
    for _ in range(2):
        deadline = time.monotonic() + 2
        while Process.whereis("fragile_t") is None and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = Process.whereis("fragile_t")
        assert pid is not None, "called supervise('fragile_t', ...), expected a process " \
            "registered as 'fragile_t', found none"
        send(pid, "crash")
        deadline = time.monotonic() + 2
        while Process.whereis("fragile_t") == pid and time.monotonic() < deadline:
            time.sleep(0.01)
    receive(timeout=3, match=lambda m: m[:2] == ("DOWN", ref))
    expect(result, [2], "supervise('fragile_t', fragile, [], restarts=2), crashing it twice")
    expect(Process.whereis("fragile_t") is not None, True,
           "supervise: after the last restart, a process registered as 'fragile_t'")


TASKS = [("call_any tries node after node", task1),
         ("wait_nodedown notices a killed node", task2),
         ("supervise restarts a crashed process", task3)]
