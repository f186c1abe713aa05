import math
import time

import pytest
from conftest import HOST

from pydist import BadRpc, Node, Process, peer, pid_to_list, receive, rpc, self, send, spawn


@pytest.fixture
def b(node):
    with peer.start("b") as handle:
        yield handle.node


def test_call_by_module_and_function_name(b):
    assert rpc.call(b, "operator", "add", [1, 2]) == 3
    assert rpc.call(b, "str", "upper", ["hello"]) == "HELLO"
    assert rpc.call(b, "pydist", "Node.self", []) == b
    assert rpc.call(b, "pydist.Node", "self", []) == b
    assert rpc.call(b, "os.path", "join", ["a", "b"]) == "a/b"


def test_call_with_a_function_defined_here_that_uses_imported_names(b):
    radius = 2.0

    def area():
        return round(math.pi * radius ** 2, 3), Node.self()
    assert rpc.call(b, area, []) == (12.566, b)
    assert rpc.call(b, lambda x, y: x * y, [6, 7]) == 42


def test_no_such_module_or_function_is_undef(b):
    for args in (["nosuchmodule", "f", []], ["str", "no_such_fun", ["x"]]):
        with pytest.raises(BadRpc) as e:
            rpc.call(b, *args)
        assert e.value.reason == "undef" and b in str(e.value)


def test_a_remote_exception_carries_its_type_message_and_traceback(b):
    def divide(a, c):
        return a / c
    with pytest.raises(BadRpc) as e:
        rpc.call(b, divide, [1, 0])
    err = e.value
    assert (err.reason, err.remote_type, err.remote_message) == \
        ("exception", "ZeroDivisionError", "division by zero")
    assert "return a / c" in err.remote_traceback
    assert f"--- remote traceback (on {b}) ---" in str(err)
    assert rpc.call(b, "operator", "add", [1, 1]) == 2     # the node is fine


def test_a_bad_argument_is_a_remote_exception(b):
    with pytest.raises(BadRpc) as e:
        rpc.call(b, "str", "upper", [42])
    assert e.value.reason == "exception" and e.value.remote_type == "TypeError"


def test_timeout_and_no_late_reply_left_behind(b):
    t = time.perf_counter()
    with pytest.raises(BadRpc) as e:
        rpc.call(b, "time", "sleep", [1], timeout=0.3)
    assert e.value.reason == "timeout"
    assert 0.25 < time.perf_counter() - t < 1.0
    assert rpc.call(b, "str", "upper", ["after the timeout"]) == "AFTER THE TIMEOUT"
    time.sleep(1)
    with pytest.raises(TimeoutError):
        receive(timeout=0.1)


def test_a_missing_node_is_a_prompt_nodedown(node):
    t = time.perf_counter()
    with pytest.raises(BadRpc) as e:
        rpc.call(f"nothere@{HOST}", "str", "upper", ["hello"])
    assert e.value.reason == "nodedown" and "python -m pydist names" in str(e.value)
    assert time.perf_counter() - t < 0.5


def test_rpc_before_start_is_nodedown_with_a_hint():
    with pytest.raises(BadRpc, match="Node.start"):
        rpc.call(f"b@{HOST}", "os", "getpid", [])


@pytest.mark.parametrize("args", [(), (42,), ("os",), ("os", 3, []), ("os", "getpid", 5),
                                  (print, 5)])
def test_call_checks_its_arguments(node, args):
    with pytest.raises(TypeError):
        rpc.call(node, *args)


def test_call_checks_the_node_and_timeout(node):
    with pytest.raises(TypeError, match="node name"):
        rpc.call(42, "os", "getpid", [])
    with pytest.raises(ValueError, match="timeout"):
        rpc.call(node, "os", "getpid", [], timeout=-1)


def test_call_on_this_node_runs_here(node):
    assert rpc.call(node, "operator", "add", [2, 3]) == 5
    with pytest.raises(BadRpc) as e:
        rpc.call(node, "nosuchmodule", "f", [])
    assert e.value.reason == "undef"


def test_what_the_remote_function_prints_appears_here_before_the_result(b, capsys):
    def chatty():
        print("printed by code running on", Node.self())
        return "done"
    assert rpc.call(b, chatty, []) == "done"
    assert capsys.readouterr().out == f"printed by code running on {b}\n"
    assert rpc.call(b, "builtins", "print", ["hello from an rpc.call"]) is None
    assert capsys.readouterr().out == "hello from an rpc.call\n"


def test_node_spawn_runs_there_and_prints_here(b, capsys):
    me = self()

    def greet():
        print(f"Node.spawn'ed process on {Node.self()} says hi")
        send(me, "done")
    pid = Node.spawn(b, greet)
    assert pid.node == b and pid_to_list(pid).startswith("<") and not pid.is_local()
    assert receive(timeout=2) == "done"
    assert capsys.readouterr().out == f"Node.spawn'ed process on {b} says hi\n"


def test_a_process_of_the_nodes_own_prints_there_labelled(b, capsys):
    def on_own_console():
        Process.group_leader(self(), Process.whereis("user"))
        print("printed on", Node.self())
        send(("t_sink", caller_node), "done")
    caller_node = Node.self()
    Process.register(self(), "t_sink")
    try:
        Node.spawn(b, on_own_console)
        assert receive(timeout=2) == "done"
        assert capsys.readouterr().out == f"[{b}] printed on {b}\n"
    finally:
        Process.unregister("t_sink")


def test_cast_returns_at_once_and_runs_there(b):
    me = self()
    assert rpc.cast(b, lambda: send(me, ("cast ran on", Node.self())), []) is True
    assert receive(timeout=2) == ("cast ran on", b)


def test_multicall(node, b):
    assert rpc.multicall([node, b, f"nothere@{HOST}"], "pydist", "Node.self", []) == \
        ([node, b], [f"nothere@{HOST}"])
    assert rpc.multicall("str", "upper", ["hi"]) == (["HI", "HI"], [])
    results, bad = rpc.multicall([b], "nosuchmodule", "f", [])
    assert bad == [] and isinstance(results[0], BadRpc) and results[0].reason == "undef"


def test_remote_pids_show_the_other_nodes_number_first(b):
    remote = rpc.call(b, self, [])
    text = pid_to_list(remote)
    index, number, _ = text.strip("<>").split(".")
    assert int(index) > 0 and remote.node == b
    assert rpc.call(b, pid_to_list, [self()]).split(".")[1] == pid_to_list(self()).split(".")[1]
    assert rpc.call(b, repr, [self()]).startswith("#PID<")


def test_a_function_the_other_node_cannot_import_is_a_clear_undef(b, tmp_path, monkeypatch):
    (tmp_path / "only_here_mod.py").write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_here_mod
    with pytest.raises(BadRpc) as e:
        rpc.call(b, only_here_mod.f, [])
    assert e.value.reason == "undef" and "importable" in str(e.value)
    with pytest.raises(BadRpc, match="importable"):
        Node.spawn(b, only_here_mod.f)
    assert rpc.call(b, "operator", "add", [1, 2]) == 3          # the connection lives on


def test_a_message_the_other_node_cannot_load_is_dropped_alone(b, tmp_path, monkeypatch):
    (tmp_path / "only_here_too.py").write_text("class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_here_too
    me = self()
    echo = Node.spawn(b, lambda: [send(me, receive()) for _ in range(2)])
    send(echo, only_here_too.Thing())
    send(echo, "plain")
    assert receive(timeout=2) == "plain"


def test_a_call_that_waits_for_a_message_from_the_callers_node_gets_it(b):
    caller_node = Node.self()
    forwarder = spawn(lambda: send(*receive()))          # ((dest, msg)) -> send(dest, msg)
    Process.register(forwarder, "t_forward")
    try:
        def waits():
            send(("t_forward", caller_node), (self(), "ping"))
            return receive(timeout=2)
        assert rpc.call(b, waits, [], timeout=5) == "ping"
    finally:
        if Process.whereis("t_forward"):
            Process.unregister("t_forward")


def test_a_long_call_does_not_hold_up_the_connection(b):
    spawn(rpc.call, b, "time", "sleep", [1.0])
    time.sleep(0.05)
    t = time.perf_counter()
    assert rpc.call(b, "operator", "add", [1, 2]) == 3
    assert time.perf_counter() - t < 0.5


def test_many_messages_each_way_arrive_complete_and_in_order(b):
    me = self()

    def collector(n, reply_to):
        got = [receive(timeout=5) for _ in range(n)]
        send(reply_to, got)
        for i in range(n):                      # and a stream back
            send(reply_to, ("back", i))
    pid = Node.spawn(b, collector, 3000, me)
    for i in range(3000):
        send(pid, i)
    assert receive(timeout=10) == list(range(3000))
    assert [receive(timeout=5)[1] for _ in range(3000)] == list(range(3000))


def test_a_pid_and_request_pair_arrives_as_it_was_sent(b):
    me = self()

    def mirror(reply_to):                 # send back what arrives, and its parts' types
        msg = receive(timeout=5)
        send(reply_to, (msg, type(msg[0]).__name__, msg[0] == reply_to))
    stranger = rpc.call(b, "pydist", "spawn", [time.sleep, 0])   # a pid of b itself
    for pair in [(me, "plain"), (me, {"qty": 30}), (stranger, [1, 2])]:
        pid = Node.spawn(b, mirror, me)
        send(pid, pair)
        got, kind, is_me = receive(timeout=5)
        assert got == pair and kind == "Pid", f"sent {pair!r}, it arrived as {got!r}"
        assert is_me == (pair[0] == me)
