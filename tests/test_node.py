import os
import signal
import stat
import threading
import time

import pytest
from conftest import HOST, python, spawn_python, stop_process, unique

from pydist import BadRpc, Node, Process, PydistError, peer, receive, rpc, self, send, spawn
from pydist._process import _table


def wait_for(check, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_start_and_stop():
    name = unique()
    assert Node.start(name) == f"{name}@{HOST}"
    assert Node.self() == f"{name}@{HOST}" and Node.alive()
    assert Node.stop() is True
    assert Node.self() == "nonode@nohost" and not Node.alive()
    assert Node.stop() is False


def test_a_second_start_under_another_name_says_what_to_do(node):
    with pytest.raises(PydistError, match="already the node.*Kernel → Restart"):
        Node.start(unique())


def test_starting_the_node_this_process_already_is_picks_up(node):
    # A notebook run again from the top calls Node.start("a") a second time.
    assert Node.start(node.split("@")[0]) == node and Node.alive()


def test_a_short_named_node_listens_on_loopback_only(node):
    assert _table.dist.listener.address[0] == "127.0.0.1"


def test_long_names_and_their_peers(capsys):
    name = Node.start(f"{unique()}@127.0.0.1")
    try:
        assert name.endswith("@127.0.0.1")
        assert _table.dist.listener.address[0] == "127.0.0.1"
        with peer.start("lp") as p:
            assert p.node == "lp@127.0.0.1"
            assert rpc.call(p.node, Node.self, []) == "lp@127.0.0.1"
        assert Node.ping(f"b@{HOST}") == "pang"       # short and long names do not mix
        assert "short one" in capsys.readouterr().err
    finally:
        Node.stop()


def test_ping_a_missing_node_is_a_prompt_pang(node):
    for target in (f"nothere@{HOST}", "nothere@nosuchhost", "nothere@127.0.0.1"):
        t = time.perf_counter()
        assert Node.ping(target) == "pang"
        assert time.perf_counter() - t < 1.0
    assert Node.connect(f"nothere@{HOST}") is False
    assert Node.list() == []


def test_ping_before_start_is_pang_and_self_is_pong(node):
    assert Node.ping(node) == "pong"
    Node.stop()
    assert Node.ping(f"b@{HOST}") == "pang"
    Node.start(node.split("@")[0])


def test_ping_connect_list_disconnect(node):
    with peer.start("b") as b:
        assert Node.list() == [b.node]
        assert Node.ping(b.node) == "pong"
        assert Node.connect(b.node) is True
        assert rpc.call(b.node, Node.list, []) == [node]
        assert Node.disconnect(b.node) is True
        assert Node.list() == []
        assert Node.disconnect(b.node) is False
        assert Node.ping(b.node) == "pong" and Node.list() == [b.node]


def _count(n: int = 0) -> None:
    """Counts the messages it gets; ("how many", pid) asks for the count."""
    while True:
        msg = receive()
        if msg[0] == "how many":
            send(msg[1], ("counted", n))
        else:
            n += 1


def test_what_was_sent_before_a_disconnect_is_written(node):
    """A stream of sends is queued (see _channel); Node.disconnect right after writes the
    queue first, as a message sent on the BEAM is on its way."""
    with peer.start("b") as b:
        rpc.call(b.node, lambda: Process.register(spawn(_count), "counter"), [])
        for i in range(300):
            send(("counter", b.node), ("one", i))
        assert Node.disconnect(b.node) is True
        send(("counter", b.node), ("how many", self()))      # connects again
        assert receive(timeout=5) == ("counted", 300)


def test_connecting_is_transitive(node):
    """b and c are connected to us; x connects to us alone and meets them too."""
    with peer.start("b") as b, peer.start("c") as c:
        assert wait_for(lambda: rpc.call(b.node, Node.list, []) == [node, c.node])
        x = spawn_python(f"""
            from pydist import Node
            Node.start({unique("x")!r}); print(Node.self(), flush=True)
            import time; time.sleep(60)""")
        try:
            xname = x.stdout.readline().strip()
            assert Node.connect(xname)
            assert wait_for(lambda: sorted(rpc.call(xname, Node.list, []))
                            == sorted([node, b.node, c.node]))
            assert wait_for(lambda: xname in rpc.call(b.node, Node.list, []))
        finally:
            stop_process(x)


def test_kill_9_is_noticed_at_once(node):
    b = peer.start("victim")
    try:
        assert Node.monitor(b.node) is True
        worker = rpc.call(b.node, "pydist", "spawn", [time.sleep, 60])
        ref = Process.monitor(worker)
        t = time.perf_counter()
        os.kill(b.os_pid, signal.SIGKILL)
        assert receive(timeout=2) == ("nodedown", b.node)
        assert receive(timeout=2) == ("DOWN", ref, "process", worker, "noconnection")
        assert time.perf_counter() - t < 1.0
        assert Node.list() == []
        with pytest.raises(BadRpc) as e:
            rpc.call(b.node, "os", "getpid", [])
        assert e.value.reason == "nodedown"
    finally:
        b.stop()


def test_a_pending_rpc_fails_at_once_when_its_node_dies(node):
    b = peer.start("dying")
    try:
        threading.Timer(0.3, os.kill, [b.os_pid, signal.SIGKILL]).start()
        t = time.perf_counter()
        with pytest.raises(BadRpc) as e:
            rpc.call(b.node, "time", "sleep", [30])
        assert e.value.reason == "nodedown"
        assert time.perf_counter() - t < 2
    finally:
        b.stop()


def test_monitoring_a_node_that_is_down_delivers_nodedown_at_once(node):
    Node.monitor(f"nothere@{HOST}")
    assert receive(timeout=1) == ("nodedown", f"nothere@{HOST}")


def test_a_clean_stop_is_a_nodedown_too(node):
    b = peer.start("leaving")
    Node.monitor(b.node)
    b.stop()
    assert receive(timeout=2) == ("nodedown", b.node)


def test_a_silent_node_is_dropped_after_the_heartbeat(capsys):
    Node.start(unique(), heartbeat=1.0)
    b = peer.start("frozen")
    try:
        Node.monitor(b.node)
        os.kill(b.os_pid, signal.SIGSTOP)
        t = time.perf_counter()
        assert receive(timeout=5) == ("nodedown", b.node)
        assert 0.9 < time.perf_counter() - t < 3
        assert "is not responding" in capsys.readouterr().err
    finally:
        os.kill(b.os_pid, signal.SIGCONT)
        b.stop()
        Node.stop()


def test_heartbeat_must_be_positive():
    with pytest.raises(ValueError, match="heartbeat"):
        Node.start(unique(), heartbeat=0)


def test_the_cookie_file_is_created_once_and_private(tmp_path):
    code = """
        from pydist import Node
        Node.start("cookie_t"); print(Node.get_cookie()); Node.stop()"""
    env = {"HOME": str(tmp_path), "PYDIST_COOKIE": ""}
    first, second = python(code, env=env), python(code, env=env)
    cookie_file = tmp_path / ".erlang.cookie"
    assert first.stdout.strip() == second.stdout.strip() == cookie_file.read_text().strip()
    assert stat.S_IMODE(cookie_file.stat().st_mode) == 0o600
    assert python(code, env={**env, "PYDIST_COOKIE": "env"}).stdout.strip() == "env"


def test_stop_releases_the_port(node):
    port = _table.dist.listener.address[1]
    Node.stop()
    import socket
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    Node.start(node.split("@")[0])


def test_a_long_name_listens_on_the_address_it_names_and_so_does_its_mapper():
    import socket
    name = Node.start(f"{unique()}@127.0.0.2")
    try:
        assert _table.dist.listener.address[0] == "127.0.0.2"
        from pydist import _epmd
        port = _epmd.lookup("127.0.0.2", name.split("@")[0]).port
        assert port == _table.dist.listener.address[1]
        with pytest.raises(OSError):                   # not on the other loopback address
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        with peer.start("far") as p:
            assert p.node == "far@127.0.0.2" and Node.ping(p.node) == "pong"
    finally:
        Node.stop()


def test_node_monitor_false_takes_the_monitor_back_and_nodedown_comes_once(node):
    b = peer.start("watched")
    try:
        Node.monitor(b.node)
        Node.monitor(b.node)
        Node.monitor(b.node, False)
        os.kill(b.os_pid, signal.SIGKILL)
        assert receive(timeout=2) == ("nodedown", b.node)       # one monitor is left
        with pytest.raises(TimeoutError):
            receive(timeout=0.3)
    finally:
        b.stop()
