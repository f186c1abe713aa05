import socket
import time

import pytest
from conftest import EPMD_PORT, python, spawn_python, stop_process, unique

from pydist import Node, PydistError, _epmd


def _raw(line: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", EPMD_PORT), timeout=3) as s:
        s.sendall(line)
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
        except ConnectionResetError:      # closed with our garbage unread: a refusal too
            return b"ERR (reset)"
        return data


def test_a_node_registers_its_name_and_port(node):
    name = node.split("@")[0]
    port = _epmd.lookup("127.0.0.1", name)
    from pydist._process import _table
    assert port == _table.dist.listener.address[1]
    assert (name, port) in _epmd.names()


def test_python_m_pydist_names_lists_the_nodes(node):
    out = python("", args=["names"]).stdout
    assert f"name {node.split('@')[0]} at port" in out


def test_names_without_a_mapper_says_no_node_is_up():
    r = python("", args=["names"], env={"PYDIST_EPMD_PORT": "1"})
    assert r.returncode == 1 and "no node is up" in r.stderr


def test_stop_frees_the_name(node):
    name = node.split("@")[0]
    Node.stop()
    assert _epmd.lookup("127.0.0.1", name) is None
    assert Node.start(name) == node          # and it can be taken again


def test_a_name_taken_on_this_host_is_a_clear_error(node):
    r = python(f"from pydist import Node\nNode.start({node.split('@')[0]!r})")
    assert r.returncode != 0
    assert "already taken" in r.stderr and "python -m pydist names" in r.stderr


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00\xff" * 300,
                                     b"REG onlyname\n", b"PORT\n", b"\xff\xfe\n"])
def test_garbage_gets_an_error_and_the_mapper_keeps_serving(node, garbage):
    assert _raw(garbage).startswith(b"ERR")
    assert _epmd.lookup("127.0.0.1", node.split("@")[0]) is not None


def test_a_crashed_nodes_name_frees_itself(node):
    name = unique("crash")
    proc = spawn_python(f"""
        from pydist import Node
        Node.start({name!r}); print("up", flush=True)
        import time; time.sleep(60)""")
    try:
        assert proc.stdout.readline().strip() == "up"
        assert _epmd.lookup("127.0.0.1", name) is not None
        proc.kill()
        deadline = time.monotonic() + 3
        while _epmd.lookup("127.0.0.1", name) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _epmd.lookup("127.0.0.1", name) is None
    finally:
        stop_process(proc)


def test_an_auto_started_mapper_exits_when_its_last_node_is_gone():
    port = str(_free_port())
    r = python("""
        import time, socket
        from pydist import Node
        Node.start("lonely"); Node.stop()
        t = time.monotonic()
        while time.monotonic() - t < 5:
            try:
                port = int(__import__("os").environ["PYDIST_EPMD_PORT"])
                socket.create_connection(("127.0.0.1", port), 0.2).close()
            except OSError:
                print("gone after", round(time.monotonic() - t, 1)); break
            time.sleep(0.05)
        """, env={"PYDIST_EPMD_PORT": port, "PYDIST_EPMD_IDLE": "0.5"})
    assert "gone after" in r.stdout, r.stdout + r.stderr


def test_foreground_mapper_serves_until_stopped():
    port = _free_port()
    proc = spawn_python(f"from pydist.__main__ import main; main(['epmd', '--port', '{port}'])")
    try:
        assert "port mapper on 127.0.0.1" in proc.stdout.readline()
        import os
        os.environ["PYDIST_EPMD_PORT"] = str(port)
        try:
            assert _epmd.names() == []
        finally:
            os.environ["PYDIST_EPMD_PORT"] = str(EPMD_PORT)
    finally:
        stop_process(proc)


def test_a_node_refuses_to_register_on_a_port_held_by_something_else():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        r = python("from pydist import Node\nNode.start('x')",
                   env={"PYDIST_EPMD_PORT": str(port)})
    assert r.returncode != 0 and "used by another program" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_register_twice_in_one_mapper(node):
    with pytest.raises(PydistError, match="already taken"):
        _epmd.register("127.0.0.1", node.split("@")[0], 1)
