"""One reader thread per connection, that only delivers (pydist/_reader.py): every
message, reply and call arrives promptly and in order, whoever waits for what."""

import os
import signal
import threading
import time

import pytest

from pydist import BadRpc, Node, Process, peer, receive, rpc, self, send, spawn


def _echo():
    from pydist import receive, send
    while True:
        sender, msg = receive()
        send(sender, msg)


def _start_echo():
    from pydist import Process, spawn
    Process.register(spawn(_echo), "t_echo")


@pytest.fixture
def b(node):
    with peer.start("rd") as handle:
        rpc.call(handle.node, _start_echo, [])
        yield handle


def _talk(node: str, n: int = 20) -> None:
    """A few round trips of messages and calls with ``node``."""
    for i in range(n):
        send(("t_echo", node), (self(), i))
        assert receive(timeout=2) == i, "the echo came back changed"
        assert rpc.call(node, "operator", "add", [i, 1]) == i + 1


def test_a_local_message_wakes_a_process_that_talks_to_another_node(b):
    _talk(b.node)
    me = self()
    threading.Timer(0.2, send, [me, "local"]).start()
    t = time.perf_counter()
    assert receive(timeout=3) == "local"         # not stuck waiting on the socket
    assert time.perf_counter() - t < 1.5


def test_a_time_limit_holds_and_no_late_reply_is_left_behind(b):
    _talk(b.node)
    t = time.perf_counter()
    with pytest.raises(BadRpc) as e:
        rpc.call(b.node, "time", "sleep", [1.0], timeout=0.2)
    assert e.value.reason == "timeout"
    assert time.perf_counter() - t < 0.9
    with pytest.raises(TimeoutError):
        receive(timeout=0.1)
    assert rpc.call(b.node, "operator", "add", [2, 2]) == 4   # and no late reply mixes in
    time.sleep(1.0)
    with pytest.raises(TimeoutError):
        receive(timeout=0.05)


def test_messages_for_other_processes_arrive_in_order_meanwhile(b):
    _talk(b.node)
    here, me = Node.self(), self()

    def collect(n):
        got = [receive(timeout=5) for _ in range(n)]
        send(me, ("collected", got))
    Process.register(spawn(collect, 300), "t_collect")

    def interleave(n, caller):
        for i in range(n):
            send(("t_collect", here), (caller, i))     # a stream: frames of many items
            send(caller, ("mine", i))
        return "done"
    assert rpc.call(b.node, interleave, [300, me], timeout=10) == "done"
    mine = [receive(timeout=5, match=lambda m: m[0] == "mine")[1] for _ in range(300)]
    assert mine == list(range(300)), "this process's messages came out of order"
    assert receive(timeout=5) == ("collected", [(me, i) for i in range(300)]), \
        "the other process's messages were lost or reordered"


def test_a_node_killed_during_a_call_is_noticed_at_once(b):
    _talk(b.node)
    Node.monitor(b.node)
    threading.Timer(0.3, os.kill, [b.os_pid, signal.SIGKILL]).start()
    t = time.perf_counter()
    with pytest.raises(BadRpc) as e:
        rpc.call(b.node, "time", "sleep", [30])
    assert e.value.reason == "nodedown"
    assert receive(timeout=2) == ("nodedown", b.node)
    assert time.perf_counter() - t < 2


def test_two_processes_in_dialogue_with_one_node_both_get_their_answers(b):
    node, me = b.node, self()

    def talker(tag):
        for i in range(200):
            send(("t_echo", node), (self(), (tag, i)))
            assert receive(timeout=5) == (tag, i)
        send(me, (tag, "ok"))
    for tag in ("x", "y"):
        spawn(talker, tag)
    _talk(node, 50)                               # and this one too, meanwhile
    assert sorted(receive(timeout=10) for _ in range(2)) == [("x", "ok"), ("y", "ok")]


def test_a_quick_call_after_a_slow_one_waits_for_nothing(b):
    # An older design let the caller read its own replies for a 5 ms window; a quick
    # call after a slow one then waited out the window about one time in ten.
    late = 0
    for _ in range(100):
        rpc.call(b.node, "time", "sleep", [0.006])
        t = time.perf_counter()
        rpc.call(b.node, "operator", "add", [1, 2])
        late += time.perf_counter() - t > 0.004
    assert late <= 3, f"{late} of 100 quick calls waited 4 ms or more after a slow one"


def _serving_thread() -> str:
    return threading.current_thread().name


def test_calls_run_on_the_call_pool_never_in_the_reader(b):
    served = {rpc.call(b.node, _serving_thread, []) for _ in range(20)}
    assert all(name.startswith("pydist-worker") for name in served), \
        f"calls ran on {sorted(served)}; only the call pool may run them"


def test_a_process_calling_in_a_loop_gets_every_answer_and_then_nodedown(b):
    # Not the notebook's process: it waits for its replies blocked in recv.
    me = self()

    def caller():
        results = [rpc.call(b.node, "operator", "add", [i, 1]) for i in range(200)]
        send(me, ("results", results))
        try:
            rpc.call(b.node, "time", "sleep", [30])
        except BadRpc as exc:
            send(me, ("down", exc.reason))
    spawn(caller)
    assert receive(timeout=10) == ("results", [i + 1 for i in range(200)])
    time.sleep(0.2)                             # it waits for the long call now
    os.kill(b.os_pid, signal.SIGKILL)
    assert receive(timeout=3) == ("down", "nodedown"), "the caller did not see the node go"


def _send_garbage_then_sleep(node: str) -> None:
    import os
    import struct
    import time

    from pydist._process import _table
    os.write(_table.dist.peers[node].channel.fd, struct.pack("!i", 5) + b"Zjunk")
    time.sleep(5)


def test_garbage_from_a_connected_node_drops_the_connection_cleanly(b, capsys):
    # A broken frame (an unknown item tag) after authentication.
    _talk(b.node)
    t = time.perf_counter()
    with pytest.raises(BadRpc) as e:
        rpc.call(b.node, _send_garbage_then_sleep, [Node.self()], timeout=10)
    assert e.value.reason == "nodedown" and time.perf_counter() - t < 3
    assert "undecodable data" in capsys.readouterr().err
    # b notices the loss at once (its reader never runs calls): we connect anew.
    deadline = time.monotonic() + 3
    while Node.ping(b.node) != "pong" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rpc.call(b.node, "operator", "add", [1, 2]) == 3, \
        "this node could not reconnect afterwards"
