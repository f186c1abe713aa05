"""Checks for exercise 08 · When nodes fail."""
import os
import signal
import threading
import time

from pydist import BadRpc, Node, Process, peer, receive, self, send, spawn
from pydist._exercises import EXITS, expect, started, unique

NODE = True


SLOW = 8              # seconds the slow node takes to answer: longer than anyone waits


def name_unless_slow():
    """Runs on the node asked: the slow one answers only after SLOW seconds."""
    if Node.self().startswith("slow"):
        time.sleep(SLOW)
    return Node.self()


def task1(ex):
    gone = f"gone@{Node.self().split('@')[1]}"
    with peer.start(unique("alive")) as alive, peer.start(unique("slow")) as slow:
        expect(ex.call_any([gone, alive.node], "pydist", "Node.self", []), alive.node,
               f"call_any([{gone!r}, {alive.node!r}], 'pydist', 'Node.self', [])")
        called = (f"call_any([{slow.node!r}, {alive.node!r}], name_unless_slow, []) where "
                  f"{slow.node} is up but answers only after {SLOW} s")
        started = time.monotonic()
        got = ex.call_any([slow.node, alive.node], name_unless_slow, [])
        if got == slow.node:
            raise AssertionError(f"called {called}, expected {alive.node!r}, got {got!r} after "
                                 f"{time.monotonic() - started:.0f} s: give up on a node that "
                                 f"does not answer in time (rpc.call(..., timeout=2)) and ask "
                                 f"the next one")
        expect(got, alive.node, called)
    try:
        ex.call_any([gone], "pydist", "Node.self", [])
    except BadRpc:
        return
    raise AssertionError(f"called call_any([{gone!r}], ...), expected BadRpc, got a return")


NOISE = ("noise", "not a nodedown")


def _taken(message) -> bool:
    """Whether ``message``, sent to ourselves, is gone from our mailbox."""
    try:
        receive(timeout=0, match=lambda m: m == message)
        return False
    except TimeoutError:
        return True


def task2(ex):
    with peer.start(unique("doomed")) as doomed:
        send(self(), NOISE)
        called = f"wait_nodedown(a live node, 0.3) with {NOISE!r} in the mailbox"
        got = ex.wait_nodedown(doomed.node, 0.3)
        if _taken(NOISE):
            what = ("got True: it took that message for the nodedown" if got is True else
                    f"got {got!r}, right only by luck: it took that message from the mailbox")
            raise AssertionError(f"called {called}, expected False, {what}. Wait for the one "
                                 f"message you want: receive(timeout=..., match=lambda m: "
                                 f"m == ('nodedown', node))")
        expect(got, False, called)
        threading.Timer(0.2, os.kill, [doomed.os_pid, signal.SIGKILL]).start()
        started = time.monotonic()
        got = ex.wait_nodedown(doomed.node, 3)
        if got is False:
            raise AssertionError("called wait_nodedown(a node killed after 0.2 s, 3), expected "
                                 "True, got False: no ('nodedown', node) message came. It comes "
                                 "only to a process that asked for it: Node.monitor(node) "
                                 "first, then receive(timeout=..., match=...)")
        expect(got, True, "wait_nodedown(a node killed after 0.2 s, 3)")
        assert time.monotonic() - started < 2, "wait_nodedown took too long to notice"


def _fragile():
    receive()
    raise RuntimeError("crash on purpose")


def task3(ex):
    started(ex.supervise)                # not "found none": it crashed in its process
    result = []
    sup = spawn(lambda: result.append(ex.supervise("fragile_t", _fragile, [], 2)))
    ref = Process.monitor(sup)
    for crashes in range(2):
        deadline = time.monotonic() + 2
        while Process.whereis("fragile_t") is None and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = Process.whereis("fragile_t")
        if pid is None:
            _no_process(sup, result, crashes)
        send(pid, "crash")
        deadline = time.monotonic() + 2
        while Process.whereis("fragile_t") == pid and time.monotonic() < deadline:
            time.sleep(0.01)
    called = "supervise('fragile_t', fragile, [], restarts=2), crashing it twice"
    try:
        receive(timeout=3, match=lambda m: m[:2] == ("DOWN", ref))
    except TimeoutError:
        raise AssertionError(f"called {called}: it did not return within 3 s of the second "
                             f"restart: does it wait for a third crash? After `restarts` "
                             f"restarts it returns, once the last new process is "
                             f"registered") from None
    expect(result, [2], called)
    if Process.whereis("fragile_t") is None:
        raise AssertionError(f"called {called}: it returned 2 with no process registered as "
                             f"'fragile_t': the second restart is a new process, started and "
                             f"registered before supervise returns")


def _no_process(sup, result, crashes):
    """No process registered as 'fragile_t' after ``crashes`` crashes: say what
    happened to supervise itself."""
    called = "called supervise('fragile_t', fragile, [], restarts=2)"
    ended = EXITS.get(sup.num)
    if isinstance(ended, BaseException):
        raise AssertionError(f"{called}: supervise crashed with {type(ended).__name__}: "
                             f"{ended}") from None
    returned = result[0] if result else None
    if ended is not None and not crashes:
        raise AssertionError(f"{called}: supervise returned {returned!r} without a process "
                             f"registered as 'fragile_t' (register each new one: "
                             f"Process.register(pid, name))")
    if ended is not None:
        raise AssertionError(f"{called}: after {crashes} crash(es) of fragile_t, supervise "
                             f"returned {returned!r}, expected it to go on until it has made "
                             f"2 restarts")
    if crashes:
        raise AssertionError(f"{called}: fragile_t crashed, and supervise started no new one "
                             f"within 2 s: does it wait for that process's own DOWN "
                             f"(ref = Process.monitor(pid), then receive(match=...) for "
                             f"('DOWN', ref, ...)) and go round again?")
    raise AssertionError(f"{called}, expected a process registered as 'fragile_t' within "
                         f"2 s, found none: does supervise spawn fun and register it?")


TASKS = [("call_any tries node after node", task1),
         ("wait_nodedown notices a killed node", task2),
         ("supervise restarts a crashed process", task3)]
