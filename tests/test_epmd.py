import socket
import struct
import threading
import time

import pytest
from conftest import EPMD_PORT, python, spawn_python, stop_process, unique

from pydist import Node, PydistError, _epmd


def _raw(data: bytes) -> bytes:
    """Send ``data`` to the mapper; all it answers before it closes the connection."""
    with socket.create_connection(("127.0.0.1", EPMD_PORT), timeout=3) as s:
        s.sendall(data)
        answer = b""
        try:
            while chunk := s.recv(4096):
                answer += chunk
        except ConnectionResetError:      # closed with our garbage unread: a refusal too
            pass
        return answer


def _framed(request: bytes) -> bytes:
    return struct.pack(">H", len(request)) + request


def _alive2(name: bytes, port: int = 4242, extra: bytes = b"", highest: int = 6) -> bytes:
    return _framed(struct.pack(">BHBBHHH", 120, port, 77, 0, highest, 5, len(name)) + name
                   + struct.pack(">H", len(extra)) + extra)


def test_a_node_registers_its_name_and_port(node):
    name = node.split("@")[0]
    entry = _epmd.lookup("127.0.0.1", name)
    from pydist._process import _table
    assert entry.port == _table.dist.listener.address[1]
    assert entry.pydist and entry.extra == _epmd.PYDIST_EXTRA
    assert (entry.node_type, entry.highest, entry.lowest) == (77, 6, 6)
    assert (name, entry.port) in _epmd.names()
    assert _table.dist.creation == _table.dist.registration.creation > 3


def test_the_mapper_answers_as_epmd_does(node):
    name = node.split("@")[0].encode()
    answer = _raw(_framed(b"\x7a" + name))                      # PORT_PLEASE2_REQ
    assert answer[:2] == b"\x77\x00", "PORT2_RESP, result 0"
    assert answer.endswith(struct.pack(">H", len(name)) + name + b"\x00\x06pydist")
    assert _raw(_framed(b"\x7anobody")) == b"\x77\x01", "an unknown name is result 1"
    names = _raw(_framed(b"\x6e"))                              # NAMES_REQ
    assert names[:4] == struct.pack(">I", EPMD_PORT), "NAMES starts with the mapper's port"
    assert b"name %s at port " % name in names[4:]


def test_creation_is_new_for_each_registration_of_a_name():
    creations = []
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", EPMD_PORT), timeout=3) as s:
            s.sendall(_alive2(b"again"))
            reply = s.recv(6)
            assert reply[:2] == b"\x76\x00", f"ALIVE2_X_RESP with result 0, not {reply!r}"
            creations.append(struct.unpack(">I", reply[2:])[0])
        deadline = time.monotonic() + 3              # the name frees when we hang up
        while _epmd.lookup("127.0.0.1", "again") and time.monotonic() < deadline:
            time.sleep(0.01)
    assert all(c > 3 for c in creations) and len(set(creations)) == 3, creations
    with socket.create_connection(("127.0.0.1", EPMD_PORT), timeout=3) as s:
        s.sendall(_alive2(b"old", highest=5))        # a pre-OTP-23 node: a 2-bit creation
        reply = s.recv(6)
        assert reply[:2] == b"\x79\x00" and 1 <= struct.unpack(">H", reply[2:])[0] <= 3


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


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",          # an oversize length (18245 bytes)
    b"\x00\xff" + b"\x00" * 255,                     # 255 bytes: longer than any request
    b"\x00\x00",                                     # an empty request
    b"\x00\x05\x6e",                                 # shorter than its length says
    _framed(b"\x6b"), _framed(b"\x73"), _framed(b"\x64"),   # KILL_REQ, STOP_REQ, DUMP_REQ
    _framed(b"\x6e\x00"),                             # NAMES_REQ with a tail
    _framed(b"\x63hello"),                             # an unknown request
    _framed(b"\x78\x10\x00"),                         # an ALIVE2_REQ cut short
    _alive2(b"x")[:-2] + b"\x00\x09",                 # ... whose lengths do not add up
    _alive2(b""), _alive2(b"n" * 256), _alive2(b"\xff\xfe"), _alive2(b"z", port=0),
    _alive2(b"e", extra=b"x" * 256)])
def test_garbage_is_closed_on_and_the_mapper_keeps_serving(node, garbage):
    assert _raw(garbage) == b"", "the mapper answered garbage"
    assert _epmd.lookup("127.0.0.1", node.split("@")[0]) is not None
    for name in ("", "n" * 256, "e"):
        assert _epmd.lookup("127.0.0.1", name) is None, "garbage got registered"


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
            socket.create_connection(("127.0.0.1", port), timeout=3).close()  # a probe
            with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                s.sendall(_framed(b"\x6b"))                                   # KILL_REQ
                assert s.recv(10) == b""
            assert _epmd.names() == [], "the mapper stopped serving"
        finally:
            os.environ["PYDIST_EPMD_PORT"] = str(EPMD_PORT)
        line = proc.stdout.readline()
        assert "refused a connection from 127.0.0.1" in line and "KILL_REQ" in line, line
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
    assert "PYDIST_EPMD_PORT" in r.stderr


def test_a_node_refuses_to_register_with_something_that_answers_but_is_no_epmd():
    with socket.socket() as impostor:
        impostor.bind(("127.0.0.1", 0))
        impostor.listen()

        def answer():
            for _ in range(2):                       # the node's probe, then its ALIVE2_REQ
                conn, _ = impostor.accept()
                with conn:
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        threading.Thread(target=answer, daemon=True).start()
        r = python("from pydist import Node\nNode.start('x')",
                   env={"PYDIST_EPMD_PORT": str(impostor.getsockname()[1])})
    assert r.returncode != 0 and "not a port mapper (epmd)" in r.stderr, r.stderr
    assert "PYDIST_EPMD_PORT" in r.stderr


def test_the_port_is_pydist_epmd_port_then_erl_epmd_port_then_4369(monkeypatch):
    monkeypatch.delenv("PYDIST_EPMD_PORT")
    monkeypatch.delenv("ERL_EPMD_PORT", raising=False)
    assert _epmd.epmd_port() == 4369
    monkeypatch.setenv("ERL_EPMD_PORT", "5000")
    assert _epmd.epmd_port() == 5000
    monkeypatch.setenv("PYDIST_EPMD_PORT", "6000")
    assert _epmd.epmd_port() == 6000
    monkeypatch.setenv("PYDIST_EPMD_PORT", "99999")
    with pytest.raises(ValueError, match="PYDIST_EPMD_PORT must be a port number"):
        _epmd.epmd_port()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_register_twice_in_one_mapper(node):
    with pytest.raises(PydistError, match="already taken"):
        _epmd.register("127.0.0.1", node.split("@")[0], 1)
