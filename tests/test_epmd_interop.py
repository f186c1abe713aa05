"""pydist's port mapper and Erlang's: one host, one mapper, whichever started first.

Each test has a port mapper port of its own; the Erlang programs and the pydist nodes
it starts get it through ERL_EPMD_PORT and PYDIST_EPMD_PORT in their environment, and
everything stays on loopback (ERL_EPMD_ADDRESS, inet_dist_use_interface)."""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, python, spawn_python, stop_process, unique

from pydist import _epmd

pytestmark = pytest.mark.skipif(shutil.which("erl") is None,
                                reason="needs Erlang: apt-get install -y erlang-base elixir")

COOKIE = "pydist-test-cookie"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port(monkeypatch) -> int:
    """A private mapper port; this test process's own client calls use it too."""
    port = _free_port()
    monkeypatch.setenv("PYDIST_EPMD_PORT", str(port))
    return port


def _env(port: int) -> dict:
    return {**os.environ, "PYDIST_EPMD_PORT": str(port), "ERL_EPMD_PORT": str(port),
            "ERL_EPMD_ADDRESS": "127.0.0.1"}


def _wait(condition, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream:
            stream.close()


@pytest.fixture
def erlang_epmd(port):
    """Erlang's own epmd on the test's port."""
    proc = subprocess.Popen(["epmd", "-port", str(port), "-address", "127.0.0.1"],
                            env=_env(port), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        _wait(lambda: _epmd.names() == [], "Erlang's epmd did not start")
        yield proc
    finally:
        _stop(proc)


@pytest.fixture
def pydist_mapper(port):
    """pydist's mapper in the foreground on the test's port."""
    proc = spawn_python(f"from pydist.__main__ import main; main(['epmd', '--port', '{port}'])",
                        env=_env(port))
    try:
        assert "port mapper on 127.0.0.1" in proc.stdout.readline()
        yield proc
    finally:
        stop_process(proc)


@pytest.fixture
def start(port):
    """start("erl", name) or start("pydist", name): a node on the test's port,
    registered when this returns; every node is killed after the test."""
    started = []

    def start_node(kind: str, name: str) -> subprocess.Popen:
        if kind == "erl":
            proc = subprocess.Popen(
                ["erl", "-sname", name, "-noshell", "-setcookie", COOKIE,
                 "-kernel", "inet_dist_use_interface", "{127,0,0,1}"],
                env=_env(port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd=ROOT)
        else:
            proc = spawn_python(f"""
                from pydist import Node
                Node.start({name!r}); print("up", flush=True)
                import sys; sys.stdin.read()""", env=_env(port))
        started.append(proc)
        _wait(lambda: _epmd.lookup("127.0.0.1", name) is not None,
              f"the {kind} node {name} did not register")
        return proc
    yield start_node
    for proc in started:
        _stop(proc)


def _epmd_names(port: int) -> str:
    """What Erlang's ``epmd -names`` prints for the mapper on ``port``."""
    return subprocess.run(["epmd", "-port", str(port), "-names"], capture_output=True,
                          text=True, timeout=10, env=_env(port)).stdout


def _processes(port: int, *words: bytes) -> set[int]:
    """Live processes whose command line holds all of ``words`` and which use ``port``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        uses = str(port).encode() in cmd or f"ERL_EPMD_PORT={port}".encode() in env
        if state != "Z" and uses and all(any(w in part for part in cmd) for w in words):
            found.add(int(entry.name))
    return found


def _mapper_gone(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return False
    except OSError:
        return True


def test_a_pydist_node_registers_with_erlangs_epmd_and_starts_no_mapper(port, erlang_epmd,
                                                                         start):
    name = unique("store")
    node = start("pydist", name)
    assert f"name {name} at port" in _epmd_names(port), "epmd -names does not list it"
    entry = _epmd.lookup("127.0.0.1", name)
    assert entry.pydist and entry.extra == _epmd.PYDIST_EXTRA
    assert not _processes(port, b"pydist", b"--daemon"), \
        "the node started a mapper of its own beside Erlang's epmd"
    _stop(node)
    _wait(lambda: _epmd.lookup("127.0.0.1", name) is None,
          "the name of a killed node stayed in epmd")


def test_an_erl_node_registers_with_pydists_mapper_and_every_tool_lists_it(port,
                                                                          pydist_mapper,
                                                                          start):
    erl, py = unique("beam"), unique("store")
    start("erl", erl)
    start("pydist", py)
    rows = dict(_epmd.names())
    assert erl in rows and py in rows, rows
    out = python("", args=["names"], env={"PYDIST_EPMD_PORT": str(port)}).stdout
    assert f"name {erl} at port {rows[erl]}" in out and f"name {py} at port" in out, out
    listed = _epmd_names(port)
    assert f"epmd: up and running on port {port} with data:" in listed, listed
    assert f"name {erl} at port" in listed and f"name {py} at port" in listed, listed
    beam, ours = _epmd.lookup("127.0.0.1", erl), _epmd.lookup("127.0.0.1", py)
    assert not beam.pydist and beam.node_type == 77 and beam.highest >= 6, beam
    assert ours.pydist, ours
    assert not _processes(port, b"epmd", b"-daemon") - _processes(port, b"pydist"), \
        "erl started Erlang's epmd beside pydist's mapper"


def test_whichever_starts_first_a_pydist_daemon_serves_erl_until_its_last_node_goes(port,
                                                                                   start):
    py = start("pydist", unique("store"))                  # starts the daemon mapper
    erl_name = unique("beam")
    erl = start("erl", erl_name)
    daemons = _processes(port, b"pydist", b"--daemon")
    assert len(daemons) == 1, "pydist's daemon mapper is not the one serving"
    _stop(py)
    time.sleep(1.5)                                         # past PYDIST_EPMD_IDLE
    assert erl_name in dict(_epmd.names()), "the mapper left while an erl node used it"
    _stop(erl)
    _wait(lambda: _mapper_gone(port), "the daemon did not exit after its last node")


def test_whichever_starts_first_erl_starts_epmd_and_pydist_registers_there(port, start):
    erl_name, py_name = unique("beam"), unique("store")
    erl = start("erl", erl_name)                           # erl runs `epmd -daemon`
    epmds = _processes(port, b"epmd", b"-daemon") - _processes(port, b"pydist")
    py = None
    try:
        assert len(epmds) == 1, "erl did not start Erlang's epmd"
        py = start("pydist", py_name)
        assert f"name {py_name} at port" in _epmd_names(port)
        assert not _processes(port, b"pydist", b"--daemon"), "pydist started a second mapper"
    finally:
        if py is not None:                # before epmd goes, or it would start a mapper
            _stop(py)
        _stop(erl)
        for pid in epmds:                                   # epmd -daemon never exits alone
            os.kill(pid, signal.SIGKILL)
        _wait(lambda: not _processes(port, b"epmd", b"-daemon"), "epmd did not stop", 5)
