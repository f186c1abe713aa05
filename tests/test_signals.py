"""Links and exit signals (pydist._signals), on one node and between two pydist nodes.
What each test expects is what Elixir 1.14 / OTP 25 does in the same steps."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from pydist import (
    Node,
    Process,
    ProcessExit,
    PydistError,
    peer,
    receive,
    self,
    send,
    spawn,
    spawn_link,
)


def _waiter(trap: bool, parent):
    Process.flag("trap_exit", trap)
    send(parent, ("trapping", trap))
    while True:
        send(parent, ("got", receive()))


def started(trap: bool = False, link: bool = False):
    """A process that waits for messages, trapping exits or not, linked or not."""
    pid = (spawn_link if link else spawn)(_waiter, trap, self())
    receive(timeout=5, match=lambda m: m == ("trapping", trap))
    return pid


def down_of(ref) -> tuple:
    return receive(timeout=5, match=lambda m: m[0] == "DOWN" and m[1] == ref)


# ---------------------------------------------------------------- on one node

def test_a_linked_crash_kills_a_process_that_does_not_trap_exits():
    def crasher(parent):
        send(parent, "linked")
        receive(timeout=5)
        raise ValueError("boom")

    def middle(parent):
        child = spawn_link(crasher, self())
        receive(timeout=5, match=lambda m: m == "linked")
        send(parent, ("child", child))
        Process.sleep(30)

    pid = spawn(middle, self())
    ref = Process.monitor(pid)
    child = receive(timeout=5)[1]
    send(child, "go")
    why = down_of(ref)[4]
    assert isinstance(why, ValueError) and str(why) == "boom", why


def test_a_trapping_process_gets_the_exit_as_a_message():
    pid = started(trap=True)
    Process.exit(pid, "shutdown")
    assert receive(timeout=5) == ("got", ("EXIT", self(), "shutdown"))
    assert Process.alive(pid)
    Process.exit(pid, "kill")


def test_kill_cannot_be_trapped_and_the_name_is_free_at_once():
    pid = started(trap=True)
    Process.register(pid, "victim")
    ref = Process.monitor("victim")
    Process.exit(pid, "kill")
    assert down_of(ref)[3:] == (("victim", Node.self()), "killed")
    assert Process.whereis("victim") is None and not Process.alive(pid)
    send(pid, "dropped")                        # to a dead pid: dropped, as in Erlang


def test_normal_does_nothing_to_another_process_and_kills_the_sender_itself():
    pid = started()
    Process.exit(pid, "normal")
    send(pid, "still there?")
    assert receive(timeout=5) == ("got", "still there?")

    def suicide(parent):
        receive(timeout=5)
        Process.exit(self(), "normal")
        send(parent, "not reached")
    victim = spawn(suicide, self())
    ref = Process.monitor(victim)
    send(victim, "go")
    assert down_of(ref)[4] == "normal"
    Process.exit(pid, "kill")
    with pytest.raises(TimeoutError):
        receive(timeout=0.1, match=lambda m: m == "not reached")


def test_a_busy_python_loop_is_stopped_by_an_asynchronous_exception():
    counting = threading.Event()

    def spin():
        counting.set()
        n = 0
        while True:
            n += 1
    pid = spawn(spin)
    assert counting.wait(5)
    thread = next(t for t in threading.enumerate() if t.name.endswith(repr(pid)[4:]))
    ref = Process.monitor(pid)
    Process.exit(pid, "kill")
    assert down_of(ref)[4] == "killed"
    thread.join(5)
    assert not thread.is_alive(), "the killed process's thread still runs"


def test_process_sleep_is_cut_short_by_a_kill():
    pid = spawn(Process.sleep, 60)
    ref = Process.monitor(pid)
    start = time.monotonic()
    Process.exit(pid, "shutdown")
    assert down_of(ref)[4] == "shutdown"
    thread = next((t for t in threading.enumerate() if t.name.endswith(repr(pid)[4:])), None)
    if thread is not None:
        thread.join(5)
        assert not thread.is_alive()
    assert time.monotonic() - start < 5


def test_linking_to_a_dead_process_raises_or_is_a_noproc_message():
    dead = spawn(lambda: None)
    ref = Process.monitor(dead)
    down_of(ref)
    with pytest.raises(PydistError, match="noproc"):
        Process.link(dead)
    Process.flag("trap_exit", True)
    try:
        Process.link(dead)
        assert receive(timeout=5) == ("EXIT", dead, "noproc")
    finally:
        Process.flag("trap_exit", False)


def test_unlink_removes_the_link_both_ways():
    first = self()
    pid = started(link=True)
    Process.unlink(pid)
    ref = Process.monitor(pid)
    Process.exit(pid, "boom")          # local signals are handled before exit returns
    assert down_of(ref)[4] == "boom"
    assert self() == first             # this thread was not killed: it keeps its pid


def test_the_notebook_thread_killed_raises_and_gets_a_new_pid():
    first = self()
    pid = started(link=True)
    with pytest.raises(ProcessExit) as died:
        Process.exit(pid, "boom")
        receive(timeout=5)
    assert died.value.reason == "boom"
    assert self() != first and not Process.alive(first)


def test_a_long_chain_of_links_dies_together_without_recursion():
    def link_next(parent, left):
        if left:
            spawn_link(link_next, parent, left - 1)
        else:
            send(parent, ("last", self()))
        receive()

    head = spawn(link_next, self(), 300)
    last = receive(timeout=30, match=lambda m: m[0] == "last")[1]
    ref = Process.monitor(last)
    Process.exit(head, "shutdown")
    assert down_of(ref)[4] == "shutdown"


def test_bad_arguments_say_what_is_expected():
    with pytest.raises(TypeError, match="takes a pid"):
        Process.link("not a pid")
    with pytest.raises(TypeError, match="True or False"):
        Process.flag("trap_exit", "yes")
    with pytest.raises(TypeError, match="not callable"):
        spawn_link(42)
    with pytest.raises(ValueError, match="seconds"):
        Process.sleep(-1)


# ---------------------------------------------------------------- across two nodes

def _linked_to(target, parent, trap):
    Process.flag("trap_exit", trap)
    Process.link(target)
    send(parent, ("linked", self()))
    while True:
        send(parent, ("remote got", receive()))


def test_links_and_kills_cross_between_pydist_nodes(node):
    with peer.start("sigs") as b:
        local = started(trap=False)
        trapping_far = Node.spawn(b.node, _linked_to, local, self(), True)
        plain_far = Node.spawn(b.node, _linked_to, local, self(), False)
        for _ in range(2):
            receive(timeout=10, match=lambda m: m[0] == "linked")
        watch = Process.monitor(plain_far)
        Process.exit(local, "boom")                 # local dies: its links get "boom"
        assert receive(timeout=10, match=lambda m: m[0] == "remote got")[1][2] == "boom"
        assert down_of(watch)[4] == "boom"
        ref = Process.monitor(trapping_far)
        Process.exit(trapping_far, "kill")          # across the wire: untrappable
        assert down_of(ref)[4] == "killed"


def test_a_lost_node_is_noconnection_for_links_to_it(node):
    b = peer.start("lost")
    try:
        far = Node.spawn(b.node, Process.sleep, 60)
        trapping = spawn(_linked_to, far, self(), True)
        plain = spawn(_linked_to, far, self(), False)
        for _ in range(2):
            receive(timeout=10, match=lambda m: m[0] == "linked")
        watch = Process.monitor(plain)
        os.kill(b.os_pid, signal.SIGKILL)
        got = receive(timeout=10, match=lambda m: m[0] == "remote got")[1]
        assert got == ("EXIT", far, "noconnection"), got
        assert down_of(watch)[4] == "noconnection"
    finally:
        b.stop()
        Process.exit(trapping, "kill")
