"""Shared fixtures: an isolated port mapper, a node per test, and leak checks.

Every test runs against a port mapper on a port of its own session, set in the
course's top conftest.py (so a learner's running nodes are never touched), and fails
if it leaves a child process behind.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from itertools import count
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


EPMD_PORT = int(os.environ["PYDIST_EPMD_PORT"])    # the session's own: see ../conftest.py

from pydist import Node  # noqa: E402  (after the environment is set)
from pydist._names import short_host  # noqa: E402
from pydist._process import _table  # noqa: E402

HOST = short_host()
ROOT = Path(__file__).resolve().parent.parent
# The notebooks that start a real Elixir node: skipped, with the install command, where
# Elixir is not installed.
ELIXIR_NOTEBOOKS = ("09_python_meets_the_beam", "10_links_and_supervisors",
                    "11_names_across_the_cluster")
_names = count(1)


def children() -> set[int]:
    """OS pids of this process's live children (zombies excluded)."""
    found = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            pass
    live = set()
    for pid in found:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            live.add(pid)
    return live


def mapper_running(port: int = EPMD_PORT) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def no_leaks():
    """Each test must stop what it started: nodes, peers, child processes."""
    before = children()
    yield
    main = getattr(_table.local, "proc", None)
    if main is not None:          # what a test left in this thread's mailbox goes with it
        main.clear()
    if Node.alive():
        Node.stop()
        pytest.fail("the test left this process running as a node: call Node.stop()")
    deadline = time.monotonic() + 3
    while (left := children() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"the test left child processes running: {sorted(left)}"


def peer_processes() -> set[int]:
    """OS pids of the pydist peers this test session started (they use its port
    mapper); peers of other programs on this machine are theirs to stop."""
    ours, found = f"PYDIST_EPMD_PORT={EPMD_PORT}".encode(), set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
                if b"pydist" in cmd and b"_peer" in cmd and \
                        ours in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="session", autouse=True)
def nothing_left_at_the_end():
    """After everything (notebooks included): no peer left, and the mapper gone."""
    before = peer_processes()
    yield
    deadline = time.monotonic() + 6
    while (mapper_running() or peer_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not peer_processes() - before, "peer processes outlived the test session"
    assert not mapper_running(), "the auto-started port mapper did not exit when idle"


def unique(prefix: str = "t") -> str:
    return f"{prefix}{os.getpid() % 1000}x{next(_names)}"


@pytest.fixture
def node():
    """This test process as a node; stopped afterwards."""
    name = Node.start(unique())
    try:
        yield name
    finally:
        Node.stop()


def python(code: str, *, env: dict | None = None, timeout: float = 30,
           stdin: str | None = None, args: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` (or ``-m pydist args``) in a fresh Python process and wait for it."""
    cmd = [sys.executable, "-m", "pydist", *args] if args is not None else \
        [sys.executable, "-c", textwrap.dedent(code)]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=ROOT)


def spawn_python(code: str, *, env: dict | None = None) -> subprocess.Popen:
    """Start ``code`` in a fresh Python process, its stdout a pipe; the caller stops it."""
    return subprocess.Popen([sys.executable, "-u", "-c", textwrap.dedent(code)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})}, cwd=ROOT,
                            stdin=subprocess.PIPE)


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    for stream in (proc.stdout, proc.stdin):
        if stream:
            stream.close()

def cpu_seconds(pid: int) -> float:
    """CPU time of every live thread of ``pid``, in ns precision (schedstat), not in
    the 10 ms ticks of /proc/PID/stat."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def pytest_collection_modifyitems(items):
    """Notebooks 09, 10 and 11 start real Elixir nodes: on a machine without Elixir, nbval's
    run of them is reported as skipped, with the command that installs Elixir."""
    if shutil.which("elixir") is not None:
        return
    skip = pytest.mark.skip(reason="needs Elixir: apt-get install -y erlang-base elixir")
    for item in items:
        if any(nb in str(item.path) for nb in ELIXIR_NOTEBOOKS):
            item.add_marker(skip)


STOP_NODE = "from pydist import Node as _N\n_N.stop()"     # a kernel's node, at its end


def reply_to(kc, msg_id: str, timeout: float) -> dict:
    """The shell channel's reply to request ``msg_id``. Not simply the next reply:
    wait_for_ready sends kernel_info again when IOPub is slow to answer (a loaded
    machine), and the extra replies wait in the channel, one cell behind."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = kc.get_shell_msg(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"the kernel sent no reply in {timeout} s") from None
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


@contextlib.contextmanager
def kernel_in(cwd: Path, on_exit: str | None = None):
    """A real IPython kernel started in ``cwd``, ready: ``(manager, client)``. At the
    end ``on_exit`` runs in it first (e.g. stopping its node), then it is shut down."""
    import jupyter_client
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(cwd), env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield km, kc
    finally:
        try:
            if on_exit is not None:
                kc.execute_interactive(on_exit, timeout=20, output_hook=lambda msg: None)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
