import re
import threading
import time

import pytest

from pydist import Pid, Process, flush, pid_to_list, receive, self, send, spawn


def echo():
    while True:
        sender, msg = receive()
        send(sender, ("echo", msg))


def test_the_calling_thread_is_a_process_with_a_stable_pid():
    me = self()
    assert isinstance(me, Pid) and self() == me
    assert re.fullmatch(r"<0\.\d+\.0>", pid_to_list(me))
    assert repr(me) == f"#PID{pid_to_list(me)}"


def test_spawn_send_receive_round_trip():
    pid = spawn(echo)
    assert send(pid, (self(), "hi")) == (self(), "hi"), "send returns the message, as in Elixir"
    assert receive(timeout=2) == ("echo", "hi")
    assert pid != self()


def test_receive_times_out_with_timeouterror():
    t = time.monotonic()
    with pytest.raises(TimeoutError, match="within 0.2 s"):
        receive(timeout=0.2)
    assert 0.15 < time.monotonic() - t < 1.5
    with pytest.raises(TimeoutError):
        receive(timeout=0)


def test_selective_receive_leaves_other_messages_in_order():
    for m in [("a", 1), ("b", 2), ("a", 3), ("b", 4)]:
        send(self(), m)
    assert receive(timeout=1, match=lambda m: m[0] == "b") == ("b", 2)
    assert [receive(timeout=1) for _ in range(3)] == [("a", 1), ("a", 3), ("b", 4)]


def test_selective_receive_waits_for_a_later_matching_message():
    me = self()
    send(me, "noise")
    threading.Timer(0.1, send, [me, "wanted"]).start()
    assert receive(timeout=2, match=lambda m: m == "wanted") == "wanted"
    assert receive(timeout=1) == "noise"


def test_messages_from_one_process_arrive_in_order():
    me = self()
    spawn(lambda: [send(me, i) for i in range(2000)])
    assert [receive(timeout=2) for _ in range(2000)] == list(range(2000))


@pytest.mark.parametrize("bad", [dict(timeout=-1), dict(timeout="1"), dict(match=3)])
def test_receive_checks_its_arguments(bad):
    with pytest.raises((TypeError, ValueError)):
        receive(**bad)


def test_flush_prints_every_message_and_empties_the_mailbox(capsys):
    send(self(), ("add", {"name": "puma", "qty": 5}))
    send(self(), "status")
    assert Process.info(self(), "messages") == ("messages", [("add", {"name": "puma", "qty": 5}),
                                                             "status"])
    assert Process.info(self(), "message_queue_len") == ("message_queue_len", 2)
    flush()
    assert capsys.readouterr().out == "('add', {'name': 'puma', 'qty': 5})\n'status'\n"
    assert Process.info(self(), "messages") == ("messages", [])
    flush()
    assert capsys.readouterr().out == ""


def test_register_whereis_registered_unregister():
    pid = spawn(echo)
    assert Process.register(pid, "echo_t1") is True
    assert Process.whereis("echo_t1") == pid
    assert "echo_t1" in Process.registered()
    send("echo_t1", (self(), 1))
    assert receive(timeout=2) == ("echo", 1)
    with pytest.raises(ValueError, match="already taken"):
        Process.register(spawn(echo), "echo_t1")
    assert Process.unregister("echo_t1")
    assert Process.whereis("echo_t1") is None
    with pytest.raises(ValueError, match="no process is registered"):
        Process.unregister("echo_t1")


@pytest.mark.parametrize("args", [("notapid", "x"), (None, "x")])
def test_register_checks_its_arguments(args):
    with pytest.raises(TypeError):
        Process.register(*args)


def test_register_needs_a_string_name():
    with pytest.raises(TypeError, match="atoms are strings"):
        Process.register(self(), 42)


def test_sending_to_an_unregistered_local_name_raises_and_says_why():
    with pytest.raises(ValueError,
                       match=r"no process is registered as 'nobody'.*Process.registered"):
        send("nobody", "hi")


def test_a_destination_with_no_node_name_says_so_and_names_a_swap():
    with pytest.raises(ValueError, match=r"'stock' is not a node name.*swapped\?"):
        send(("ps@vm", "stock"), "status")
    with pytest.raises(ValueError, match=r"'ps' is not a node name") as refused:
        send(("stock", "ps"), "status")
    assert "swapped" not in str(refused.value)


def test_sending_to_a_dead_pid_is_silently_dropped():
    pid = spawn(lambda: None)
    ref = Process.monitor(pid)
    assert receive(timeout=2)[:2] == ("DOWN", ref)
    assert send(pid, "hello?") == "hello?"


@pytest.mark.parametrize("dest", [42, ("a",), ("a", "b", "c"), None])
def test_send_refuses_what_is_not_a_destination(dest):
    with pytest.raises(TypeError, match="send to a pid"):
        send(dest, "x")


def test_a_registered_process_that_dies_loses_its_name():
    pid = spawn(receive)
    Process.register(pid, "short_lived")
    ref = Process.monitor(pid)
    send(pid, "go")
    assert receive(timeout=2) == ("DOWN", ref, "process", pid, "normal")
    assert Process.whereis("short_lived") is None
    assert Process.info(pid) is None


def test_a_process_that_raises_dies_alone_and_is_reported(capsys):
    def boom():
        receive(timeout=5)                       # monitored first, then it crashes
        raise RuntimeError("boom")
    pid = spawn(boom)
    ref = Process.monitor(pid)
    send(pid, "go")
    down = receive(timeout=2)
    assert down[:4] == ("DOWN", ref, "process", pid)
    assert isinstance(down[4], RuntimeError)
    err = capsys.readouterr().err
    assert f"Process {pid!r} raised an exception" in err and "RuntimeError: boom" in err
    other = spawn(echo)
    send(other, (self(), "still fine"))
    assert receive(timeout=2) == ("echo", "still fine")


def test_monitoring_a_dead_process_gives_noproc():
    pid = spawn(lambda: None)
    time.sleep(0.1)
    ref = Process.monitor(pid)
    assert receive(timeout=2) == ("DOWN", ref, "process", pid, "noproc")


def test_demonitor_stops_the_down_message():
    pid = spawn(receive)
    ref = Process.monitor(pid)
    Process.demonitor(ref)
    send(pid, "stop")
    with pytest.raises(TimeoutError):
        receive(timeout=0.3)


def test_spawn_needs_a_function():
    with pytest.raises(TypeError, match="not callable"):
        spawn("handle_stock")


def test_process_info_refuses_a_remote_pid_and_unknown_items():
    with pytest.raises(ValueError, match="unknown item"):
        Process.info(self(), "colour")
    with pytest.raises(ValueError, match="lives on"):
        Process.info(Pid("b@elsewhere", 5), "messages")


def test_the_product_stock_loop_of_the_article(capsys):
    def handle_stock(stock):
        while True:                         # Elixir recurses; Python loops
            msg = receive()
            if msg[0] == "add":
                stock = [msg[1]] + stock
            elif msg[0] == "status":
                send(msg[1], stock)
    pid = spawn(handle_stock, [])
    Process.register(pid, "product_stock_t")
    send("product_stock_t", ("add", {"name": "nike", "qty": 30}))
    send("product_stock_t", ("add", {"name": "adidas", "qty": 35}))
    send("product_stock_t", ("status", self()))
    assert receive(timeout=2) == [{"name": "adidas", "qty": 35}, {"name": "nike", "qty": 30}]


def test_a_receive_that_waits_forever_can_be_interrupted():
    import signal

    from conftest import spawn_python, stop_process
    proc = spawn_python("""
        from pydist import receive
        print("waiting", flush=True)
        try:
            receive()
        except KeyboardInterrupt:
            print("interrupted", flush=True)""")
    try:
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline().strip() == "interrupted"
    finally:
        stop_process(proc)


@pytest.mark.parametrize("bad", [42, ("a",), (1, 2), None])
def test_monitor_refuses_what_is_not_a_process(bad):
    with pytest.raises(TypeError, match="pid, a name or"):
        Process.monitor(bad)


def test_monitoring_a_name_nobody_has_gives_noproc():
    ref = Process.monitor("nobody_here")
    assert receive(timeout=1) == ("DOWN", ref, "process", ("nobody_here", "nonode@nohost"),
                                  "noproc")


def test_a_wait_in_elixirs_milliseconds_is_warned_about_where_it_was_written():
    """receive(timeout=1000) waits 16 minutes here: it still works, with a warning that
    names the line and the figure meant (Elixir's `after 1000` is timeout=1)."""
    import warnings

    from pydist import Process, PydistWarning
    send(self(), "now")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert receive(timeout=1000) == "now"
        Process.sleep(0.01)                                # seconds: no warning
    [warned] = caught
    assert warned.category is PydistWarning and warned.filename == __file__, warned
    assert "1000 is 1000 seconds (17 min) here" in str(warned.message)
    assert "Elixir's 1000 ms is 1" in str(warned.message)
