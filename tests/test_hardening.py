"""Hostile input and unlucky users (issue: hardening): slow or garbage peers, too many
connections, a crashed port mapper, impostors, cookie files, forks, bad arguments.
Everything on loopback, bounded in time and count."""

import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import EPMD_PORT, ROOT, cpu_seconds, python, spawn_python, stop_process, unique

from pydist import BadRpc, Node, Process, PydistError, _epmd, peer, rpc, send
from pydist import _transport as wire
from pydist._process import _table


def _node_port() -> int:
    return _table.dist.listener.address[1]


def _closed_within(sock: socket.socket, seconds: float, drip: bytes = b"") -> float:
    """Drip ``drip`` one byte every 0.2 s until the other side closes: how long it took."""
    start, i = time.monotonic(), 0
    sock.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - start
        except socket.timeout:
            pass
        except OSError:
            return time.monotonic() - start
        if drip:
            try:
                sock.send(drip[i % len(drip):i % len(drip) + 1])
            except OSError:
                return time.monotonic() - start
            i += 1
    return float("inf")


# ---------------------------------------------------------------- deadlines

def test_a_client_dripping_its_greeting_is_cut_off_at_the_setup_deadline(node, monkeypatch):
    monkeypatch.setattr(wire, "SETUP_TIME", 1.0)
    with socket.create_connection(("127.0.0.1", _node_port())) as sock:
        # A valid length prefix, then the greeting one byte at a time.
        sock.send(struct.pack("!i", 40))
        took = _closed_within(sock, 6, drip=b"PYDIST1 x@" + b"a" * 40)
    assert took < 2.5, f"a dripping client kept the connection {took:.1f} s (limit 1 s)"


def test_a_client_dripping_its_request_to_the_mapper_is_cut_off(node):
    with socket.create_connection(("127.0.0.1", EPMD_PORT)) as sock:
        # A valid length prefix, then an ALIVE2_REQ one byte at a time.
        sock.send(struct.pack(">H", 200))
        took = _closed_within(sock, 8, drip=b"\x78" + b"\x00" * 199)
    assert took < _epmd.REQUEST_TIMEOUT + 1.5, f"the mapper waited {took:.1f} s"


def test_a_connection_past_the_bound_evicts_the_oldest_and_the_node_serves_on(node):
    held = [socket.create_connection(("127.0.0.1", _node_port())) for _ in
            range(wire.MAX_SETUPS)]
    try:
        with socket.create_connection(("127.0.0.1", _node_port())) as extra:
            assert _closed_within(held[0], 3) < 1.5, "the oldest set-up was kept"
            extra.settimeout(0.3)             # the newest is being set up: kept open
            with pytest.raises(TimeoutError):
                extra.recv(1)
    finally:
        for s in held:
            s.close()
    with peer.start(unique("hb")) as p:           # set-ups free again: a real node joins
        assert rpc.call(p.node, "operator", "add", [1, 2]) == 3


NODE_WITH_FEW_DESCRIPTORS = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
from pydist import Node
print(Node.start(sys.argv[1] if len(sys.argv) > 1 else "fewfds"), flush=True)
from pydist._process import _table
print(_table.dist.listener.address[1], flush=True)
time.sleep(60)
"""



def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_running_out_of_descriptors_neither_spins_nor_keeps_threads(node):
    proc = spawn_python(NODE_WITH_FEW_DESCRIPTORS)
    try:
        name = proc.stdout.readline().strip()
        port = int(proc.stdout.readline())
        base = _threads(proc.pid)
        flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(80)]
        time.sleep(0.5)
        before = cpu_seconds(proc.pid)
        time.sleep(2)
        used = cpu_seconds(proc.pid) - before
        assert used < 0.5, f"out of descriptors, the node burnt {used:.2f} CPU-s in 2 s"
        for s in flood:
            s.close()
        deadline = time.monotonic() + wire.SETUP_TIME + 3
        while _threads(proc.pid) > base + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _threads(proc.pid) <= base + 2, "threads were not given back"
        assert Node.ping(name) == "pong", "the node did not recover"
    finally:
        stop_process(proc)


# ---------------------------------------------------------------- the port mapper

def _mapper_pid() -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"epmd" in cmd and b"--daemon" in cmd and str(EPMD_PORT).encode() in cmd:
                return int(entry.name)
    raise AssertionError("no port mapper daemon runs for this test session")


def test_after_the_mapper_is_killed_nodes_register_again_and_keep_their_names(node):
    name = node.split("@")[0]
    os.kill(_mapper_pid(), signal.SIGKILL)
    deadline = time.monotonic() + 3
    port = None
    while port is None and time.monotonic() < deadline:
        try:
            port = (_epmd.lookup("127.0.0.1", name) or (None,))[0]
        except OSError:
            pass
        time.sleep(0.05)
    assert port == _node_port(), "the node did not register again with a new mapper"
    r = python(f"from pydist import Node\nNode.start({name!r})")
    assert r.returncode != 0 and "already taken" in r.stderr, \
        "a second node could take the name of a running one"


def _mapper_with_few_descriptors(port: int) -> subprocess.Popen:
    import resource

    def few():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))
    proc = subprocess.Popen([sys.executable, "-m", "pydist", "epmd", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=few,
                            cwd=ROOT)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the mapper did not start")


def test_a_mapper_out_of_descriptors_keeps_its_nodes_and_does_not_spin(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mapper = _mapper_with_few_descriptors(port)
    monkeypatch.setenv("PYDIST_EPMD_PORT", str(port))
    held = []
    try:
        keeper = _epmd.register("127.0.0.1", "keeper", 4242)
        for i in range(60):                      # more than its 40 descriptors
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
                name = b"flood%d" % i
                s.sendall(struct.pack(">HBHBBHHH", 13 + len(name), 120, 1000 + i, 77, 0, 6, 6,
                                      len(name)) + name + b"\x00\x00")
                held.append(s)
            except OSError:
                break
        time.sleep(0.5)
        before = cpu_seconds(mapper.pid)
        time.sleep(1.5)
        assert cpu_seconds(mapper.pid) - before < 0.5, "the mapper spun out of descriptors"
        assert mapper.poll() is None, "the mapper exited when it ran out of descriptors"
        for s in held:
            s.close()
        held = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if _epmd.lookup("127.0.0.1", "keeper").port == 4242:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert _epmd.lookup("127.0.0.1", "keeper").port == 4242, "the mapper lost its node"
        keeper.close()
    finally:
        for s in held:
            s.close()
        mapper.kill()
        mapper.wait(5)
        mapper.stderr.close()


@pytest.mark.parametrize("answer", [
    b"PORT 1000000000000000000000000000000\n",                    # text, not a PORT2_RESP
    b"\x77\x00\x00\x00M\x00\x00\x06\x00\x06\x00\x01x\x00\x00",      # port 0
    b"\x77\x00\x10\x00M\x00\x00\x06\x00\x06\x00\x09x",              # cut short
    b"\x77\x00\x10\x00M\x00\x00\x06\x00\x06\x00\x01x\x00\x09ab"])   # Extra cut short
def test_an_impossible_answer_from_a_mapper_is_no_port(monkeypatch, answer):
    with socket.socket() as fake:
        fake.bind(("127.0.0.1", 0))
        fake.listen(1)

        def reply():
            conn, _ = fake.accept()
            with conn:
                conn.recv(100)
                conn.sendall(answer)
        threading.Thread(target=reply, daemon=True).start()
        monkeypatch.setenv("PYDIST_EPMD_PORT", str(fake.getsockname()[1]))
        assert _epmd.lookup("127.0.0.1", "anyone") is None


# ---------------------------------------------------------------- impostors

def _impostor(behaviour: str) -> socket.socket:
    """A listening socket registered with the mapper as node 'impostorN' that answers
    each connection with garbage, a short non-challenge frame, or a slow drip."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            try:
                if behaviour == "short":
                    conn.sendall(struct.pack("!i", 3) + b"abc")
                elif behaviour == "garbage":
                    conn.sendall(os.urandom(64))
                else:                                     # drip, a byte a second
                    for b in struct.pack("!i", 40) + b"#CHALLENGE#" + b"x" * 29:
                        conn.send(bytes([b]))
                        time.sleep(1)
            except OSError:
                pass
    threading.Thread(target=serve, daemon=True).start()
    return srv


@pytest.mark.parametrize("behaviour", ["short", "garbage", "drip"])
def test_an_impostor_node_gives_pang_false_badrpc_and_a_silent_send(node, behaviour):
    srv = _impostor(behaviour)
    name = unique("impostor")
    reg = _epmd.register("127.0.0.1", name, srv.getsockname()[1])
    target = f"{name}@{node.split('@')[1]}"
    try:
        for what, call, expect in [("ping", lambda: Node.ping(target), "pang"),
                                   ("connect", lambda: Node.connect(target), False),
                                   ("send", lambda: send(("x", target), "hi"), "hi")]:
            start = time.monotonic()
            assert call() == expect, f"{what} to an impostor"
            assert time.monotonic() - start < 3.5, f"{what} took too long"
        start = time.monotonic()
        with pytest.raises(BadRpc) as e:
            rpc.call(target, "operator", "add", [1, 2])
        assert e.value.reason == "nodedown" and time.monotonic() - start < 3.5
    finally:
        reg.close()
        srv.close()


# ---------------------------------------------------------------- cookies

STARTERS = 320


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
def test_many_first_starts_at_once_all_get_the_same_cookie(tmp_path, monkeypatch):
    from pydist._node import _cookie
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PYDIST_COOKIE")
    go_r, go_w = os.pipe()
    children = []
    for i in range(STARTERS):
        pid = os.fork()
        if pid == 0:                             # the child: wait for "go", then start
            try:
                os.read(go_r, 1)
                cookie = _cookie(None)
                (tmp_path / f"got{i}").write_bytes(cookie)
                os._exit(0)
            except BaseException:
                os._exit(1)
        children.append(pid)
    os.write(go_w, b"g" * STARTERS)
    codes = [os.waitpid(pid, 0)[1] for pid in children]
    os.close(go_r)
    os.close(go_w)
    failed = STARTERS - codes.count(0)
    assert not failed, f"{failed} of {STARTERS} simultaneous first starts failed"
    cookies = {(tmp_path / f"got{i}").read_bytes() for i in range(STARTERS)}
    assert len(cookies) == 1, "simultaneous first starts got different cookies"
    assert (tmp_path / ".erlang.cookie").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == \
        [".erlang.cookie"], "temporary cookie files were left behind"


def test_a_cookie_file_others_can_read_is_refused_with_the_fix(tmp_path, monkeypatch):
    from pydist._node import _cookie
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PYDIST_COOKIE")
    path = tmp_path / ".erlang.cookie"
    path.write_text("secret")
    path.chmod(0o644)
    with pytest.raises(PydistError, match=rf"{path}.*chmod 600 {path}"):
        _cookie(None)


# ---------------------------------------------------------------- forks

FORKING_STARTER = """
import os, sys, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)    # 3.12+: fork with threads running
from pydist import Node, peer
Node.start(sys.argv[1])
p = peer.start(sys.argv[1] + "kid")
print(p.os_pid, flush=True)
if os.fork() == 0:
    print(os.getpid(), flush=True)
    time.sleep(30)                       # the fork lives on ...
    os._exit(0)
os._exit(0)                              # ... its parent, the starter, dies at once
"""


def test_a_peer_lives_as_long_as_its_starter_not_a_fork_of_it():
    name = unique("fork")
    proc = spawn_python(FORKING_STARTER.replace("sys.argv[1]", repr(name)))
    fork_pid = None
    try:
        peer_pid = int(proc.stdout.readline())
        fork_pid = int(proc.stdout.readline())
        deadline = time.monotonic() + 5
        while Path(f"/proc/{peer_pid}").exists() and time.monotonic() < deadline:
            state = Path(f"/proc/{peer_pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                break
            time.sleep(0.05)
        alive = Path(f"/proc/{peer_pid}").exists() and \
            Path(f"/proc/{peer_pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        assert not alive, "the peer outlived its starter while a fork of the starter lived"
        deadline = time.monotonic() + 3
        while _epmd.lookup("127.0.0.1", name) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _epmd.lookup("127.0.0.1", name) is None, "the dead starter's name stayed"
    finally:
        if fork_pid is not None:
            os.kill(fork_pid, signal.SIGKILL)
        stop_process(proc)


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("call, error, words", [
    (lambda: Process.whereis(123), TypeError, "a registered name"),
    (lambda: Process.unregister(None), TypeError, "a registered name"),
    (lambda: Process.demonitor("ref"), TypeError, "Process.monitor returned"),
    (lambda: Node.start("a@b@c"), ValueError, "one '@' only"),
    (lambda: Node.ping(42), TypeError, "node name like"),
    (lambda: rpc.call(42, "m", "f", []), TypeError, "node name like"),
    (lambda: send(42, "x"), TypeError, "send to a pid"),
])
def test_bad_arguments_raise_with_the_fix(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_nodes_listen_in_the_port_range_a_firewall_allows():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        low = s.getsockname()[1]
    r = python(f"from pydist import Node\nNode.start('{unique('range')}')\n"
               f"from pydist._process import _table\nprint(_table.dist.listener.address[1])",
               env={"PYDIST_PORTS": f"{low}-{low + 20}"})
    assert r.returncode == 0, r.stderr
    assert low <= int(r.stdout) <= low + 20
    bad = python("from pydist import Node\nNode.start('x')", env={"PYDIST_PORTS": "ninety"})
    assert "PYDIST_PORTS is a port or a range like 9100-9199" in bad.stderr
