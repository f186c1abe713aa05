import os
import time

import pytest
from conftest import HOST, spawn_python, stop_process

from pydist import Node, PydistError, peer, rpc


def test_start_connects_and_stop_ends_the_os_process(node):
    p = peer.start("srv")
    assert p.node == f"srv@{HOST}" and p.node in Node.list()
    assert rpc.call(p.node, "os", "getcwd", []) == os.getcwd()
    assert rpc.call(p.node, "os", "getppid", []) == os.getpid()
    p.stop()
    assert p.process.poll() is not None and p.node not in Node.list()
    p.stop()                                           # stopping twice is fine


def test_a_peer_can_import_what_its_starter_can(node, tmp_path, monkeypatch):
    (tmp_path / "mymod_for_peer.py").write_text("def hello():\n    return 'hi from mymod'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with peer.start("imp") as p:
        assert rpc.call(p.node, "mymod_for_peer", "hello", []) == "hi from mymod"


def test_what_a_peer_prints_by_itself_reaches_the_starter_labelled(node, capsys):
    with peer.start("talker") as p:
        rpc.call(p.node, lambda: __import__("threading").Thread(
            target=print, args=("tick from the peer",)).start(), [])
        deadline = time.monotonic() + 3
        out = ""
        while "tick" not in out and time.monotonic() < deadline:
            time.sleep(0.05)
            out += capsys.readouterr().out
        assert f"[{p.node}] tick from the peer\n" in out


def _print_once_alone():
    """On a peer: a thread of its own that prints, on both streams, once the peer has no
    connection left."""
    import sys
    import threading

    def later():
        deadline = time.monotonic() + 5
        while Node.list() and time.monotonic() < deadline:
            time.sleep(0.01)
        print("alone now\n50%\rdone")
        print("alone, on stderr", file=sys.stderr)
    threading.Thread(target=later).start()


def test_what_a_peer_prints_cut_off_from_its_starter_still_lands_there(node, capsys):
    """Over its pipe then, each line on its own stream, labelled and in order."""
    with peer.start("cutoff") as p:
        rpc.call(p.node, _print_once_alone, [])
        assert Node.disconnect(p.node) is True
        deadline, out, err = time.monotonic() + 5, "", ""
        while "alone, on stderr" not in err and time.monotonic() < deadline:
            time.sleep(0.05)
            got = capsys.readouterr()
            out, err = out + got.out, err + got.err
        label = f"[{p.node}] "              # each line, as over the connection (after \r too)
        assert f"{label}alone now\n{label}50%\r{label}done\n" in out, out
        assert "on stderr" not in out, out
        assert f"[{p.node}] alone, on stderr\n" in err and "alone now" not in err, err
        assert p.node not in Node.list()          # the pipe, not a new connection
        p.stop()                                  # unreachable: its lifeline ends it
        assert p.process.returncode == 0, "killed after the stop timeout, not ended"


def test_a_line_from_a_peers_pipe_is_read_whatever_it_holds():
    from pydist.peer import LINE_MARK, _marked
    assert _marked(f"{LINE_MARK}2 12.5 b@h a line\n", "b@h") == (2, "a line\n", "b@h", 12.5)
    assert _marked(f"{LINE_MARK}1 7 x@h  two  spaces\n", "b@h") == (1, " two  spaces\n", "x@h", 7.0)
    for garbage in (f"{LINE_MARK}\n", f"{LINE_MARK}2 soon b@h text\n", "plain text\n"):
        assert _marked(garbage, "b@h") == (1, garbage, "b@h", None)     # shown as it came


def test_start_needs_a_node():
    with pytest.raises(PydistError, match="Node.start"):
        peer.start("x")


def test_start_checks_the_name(node):
    with pytest.raises(TypeError):
        peer.start(42)
    with pytest.raises(ValueError):
        peer.start("bad name")
    with pytest.raises(ValueError, match="runs on this host"):
        peer.start("x@otherhost")


def test_a_name_taken_elsewhere_fails_with_what_the_peer_printed(node):
    other = spawn_python("""
        from pydist import Node
        print(Node.start("dup"), flush=True)
        import time; time.sleep(30)
    """)
    try:
        taken = other.stdout.readline().strip()
        with pytest.raises(PydistError, match="already taken"):
            peer.start("dup")
        assert Node.ping(taken) == "pong", "the node that has the name was disturbed"
    finally:
        stop_process(other)


def test_a_peer_never_outlives_its_starter_even_after_kill_9():
    starter = spawn_python("""
        from pydist import Node, peer
        Node.start("starter_t")
        p = peer.start("orphan_t")
        print(p.os_pid, flush=True)
        import time; time.sleep(60)""")
    try:
        child = int(starter.stdout.readline())
        starter.kill()
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the peer kept running after its starter was killed"
    finally:
        stop_process(starter)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_stop_all_peers_with_the_node():
    Node.start("starter_t2")
    p = peer.start("child_t2")
    Node.stop()
    assert p.process.wait(3) is not None
    assert not _alive(p.os_pid)


def test_starting_a_peer_again_gives_a_fresh_one(node):
    first = peer.start("again")
    second = peer.start("again")                  # the notebook's cell run again
    try:
        assert first.process.poll() is not None, "the old peer still runs"
        assert second.process.poll() is None and second.node in Node.list()
        assert rpc.call(second.node, "operator", "add", [1, 2]) == 3
    finally:
        second.stop()


def test_a_peer_start_interrupted_leaves_no_half_started_peer(node):
    import signal
    import threading
    timer = threading.Timer(0.02, os.kill, [os.getpid(), signal.SIGINT])
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        peer.start("halfway")
        time.sleep(5)                              # in case it was quicker than the timer
    timer.join()
    assert not [n for n in Node.list() if n.startswith("halfway@")]
    # the fixture's leak check fails the test if the child process is still there


def test_without_elixir_peer_start_says_how_to_install_it(node, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PydistError, match="apt-get install elixir"):
        peer.start("noelixir", elixir=True)
