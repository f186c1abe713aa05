"""Light processes (pydist/_light.py): greenlets on one scheduler thread that behave as
processes do (mailbox, names, timeouts, monitors, links, exit signals, calls to other
nodes) and give way only where pydist waits; a busy one holds up the others."""

import time

import pytest

from pydist import Node, Process, peer, receive, rpc, self, send, spawn, spawn_link
from pydist._process import _table


def _echo():
    while True:
        sender, msg = receive()
        send(sender, ("echo", self(), msg))


def _down_of(pid, timeout=5):
    return receive(timeout=timeout, match=lambda m: m[0] == "DOWN" and m[3] == pid)


def test_a_light_process_has_a_pid_a_mailbox_and_a_name():
    pid = spawn(_echo, light=True)
    try:
        send(pid, (self(), "hi"))
        assert receive(timeout=5) == ("echo", pid, "hi")
        Process.register(pid, "light_echo")
        send("light_echo", (self(), "by name"))
        assert receive(timeout=5) == ("echo", pid, "by name")
    finally:
        Process.exit(pid, "kill")


def test_waiting_light_processes_let_the_others_run():
    # One sleeps and one waits with a time limit; a third answers meanwhile.
    me = self()
    echo = spawn(_echo, light=True)

    def sleeper():
        Process.sleep(0.3)
        send(me, "slept")

    def waiter():
        try:
            receive(timeout=0.3)
        except TimeoutError:
            send(me, "timed out")
    spawn(sleeper, light=True)
    spawn(waiter, light=True)
    start = time.monotonic()
    send(echo, (me, 1))
    assert receive(timeout=5) == ("echo", echo, 1)
    assert time.monotonic() - start < 0.25, "the echo waited for the sleepers"
    assert sorted(receive(timeout=5) for _ in range(2)) == ["slept", "timed out"]
    assert time.monotonic() - start >= 0.29
    Process.exit(echo, "kill")


def test_a_light_process_ends_with_a_reason_its_monitors_see():
    ended = spawn(lambda: None, light=True)
    Process.monitor(ended)                     # may be gone already: DOWN noproc then
    assert _down_of(ended)[4] in ("normal", "noproc")

    def crash():
        receive(timeout=5)
        raise ValueError("boom")
    crasher = spawn(crash, light=True)
    Process.monitor(crasher)
    send(crasher, "go")
    reason = _down_of(crasher)[4]
    assert isinstance(reason, ValueError) and str(reason) == "boom"

    waiting = spawn(receive, light=True)
    Process.monitor(waiting)
    Process.exit(waiting, "kill")
    assert _down_of(waiting)[4] == "killed"
    assert _table.lookup(waiting) is None


def test_a_link_to_a_light_process_carries_its_exit():
    Process.flag("trap_exit", True)
    try:
        child = spawn_link(lambda: receive(timeout=5) and Process.exit(self(), "bye"),
                           light=True)
        send(child, "go")
        assert receive(timeout=5, match=lambda m: m[0] == "EXIT") == ("EXIT", child, "bye")
    finally:
        Process.flag("trap_exit", False)


@pytest.mark.parametrize("wait_first", [False, True])
def test_many_light_processes_start_answer_and_end(wait_first):
    # Messaged before they first run (each ends at once, and the next reuses its
    # greenlet), or after they all wait: each answers as itself, and all end.
    me, n = self(), 5000

    def worker():
        send(me, (self(), receive(timeout=30) * 2))
    pids = [spawn(worker, light=True) for _ in range(n)]
    if wait_first:
        deadline = time.monotonic() + 10
        while not all(_table.lookup(p).idle for p in pids) and time.monotonic() < deadline:
            time.sleep(0.01)
    for i, pid in enumerate(pids):
        send(pid, i)
    answers = dict(receive(timeout=30) for _ in pids)
    assert answers == {pid: 2 * i for i, pid in enumerate(pids)}
    deadline = time.monotonic() + 10
    while any(_table.lookup(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(_table.lookup(p) for p in pids), "some light processes never ended"


@pytest.mark.parametrize("light", [False, True])
def test_a_busy_process_holds_up_light_ones_only(light):
    # The trade-off notebook 04 shows: threads are preempted, light processes are not.
    me = self()

    def busy():
        send(me, "busy")
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            pass
    replier = spawn(lambda: send(me, receive(timeout=5)), light=light)
    spawn(busy, light=light)
    receive(timeout=5, match=lambda m: m == "busy")
    start = time.monotonic()
    send(replier, "there?")
    assert receive(timeout=5) == "there?"
    took = time.monotonic() - start
    if light:
        assert took > 0.3, f"a light process answered in {took:.2f} s beside a busy one"
    else:
        assert took < 0.3, f"a thread waited {took:.2f} s for a busy one"
    time.sleep(0.6 if not light else 0)


def test_a_light_process_calls_another_node_and_others_run_meanwhile():
    Node.start(f"light{time.monotonic_ns() % 10**6}")
    try:
        with peer.start("lightpeer") as b:
            me = self()
            echo = spawn(_echo, light=True)

            def caller():
                send(me, ("called", rpc.call(b.node, "time", "sleep", [0.3]) is None))
            spawn(caller, light=True)
            time.sleep(0.05)
            start = time.monotonic()
            send(echo, (me, "quick"))
            assert receive(timeout=5, match=lambda m: m[0] == "echo")[2] == "quick"
            assert time.monotonic() - start < 0.2, "the echo waited for the call"
            assert receive(timeout=5) == ("called", True)
            Process.exit(echo, "kill")
    finally:
        Node.stop()
