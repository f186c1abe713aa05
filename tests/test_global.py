"""global between pydist nodes alone (_global, _global_sync): OTP 25's rule against
overlapping partitions holds without a BEAM node, and a node that stops or dies is no
partition. The same with Elixir nodes: test_global_pg."""

from __future__ import annotations

import os
import signal
import time

from conftest import unique

from pydist import Global, Node, peer, rpc


def wait_for(condition, timeout: float = 10.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s (last: {value!r})")
        time.sleep(0.02)


def _record_views(path: str, seconds: float) -> None:
    """On a peer: write its Node.list() to ``path`` every 20 ms, for ``seconds``; a file,
    so that we can read it without connecting to the peer again."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with open(path + ".tmp", "w") as f:
            f.write(",".join(sorted(Node.list())))
        os.replace(path + ".tmp", path)
        time.sleep(0.02)


def _mesh(n: int) -> list:
    peers = [peer.start(unique(f"py{i}")) for i in range(n)]
    for p in peers[1:]:
        rpc.call(p.node, Node.connect, [peers[0].node])
    everyone = sorted([Node.self(), *(p.node for p in peers)])
    for p in peers:
        wait_for(lambda p=p: sorted([p.node, *rpc.call(p.node, Node.list, [])]) == everyone,
                 what=f"{p.node} in the full mesh")
        assert rpc.call(p.node, Global.sync, []) is True
    return peers


def _global_lines(err: str) -> set[str]:
    return {line for line in err.splitlines() if "'global'" in line}


def test_a_disconnect_between_pydist_nodes_ends_as_among_elixir_nodes(node, tmp_path, capfd):
    """Elixir's transcript, a, b and c: a disconnects c; b hears that a lost c and that c
    lost a, and asks both to drop it. The three end apart, and each logs what it did:
    c's line reaches us over its pipe, as c is cut off from us by then."""
    b, c = _mesh(2)
    try:
        for p in (b, c):
            rpc.cast(p.node, _record_views, [str(tmp_path / p.node), 8.0])
        wait_for(lambda: all((tmp_path / p.node).exists() for p in (b, c)), what="the views")
        capfd.readouterr()
        assert Node.disconnect(c.node) is True

        def apart():
            views = [(tmp_path / p.node).read_text() for p in (b, c)]
            return Node.list() == [] and views == ["", ""]
        wait_for(apart, what="a, b and c apart")
        me = Node.self()
        expected = {
            f"pydist {me}: 'global' disconnected {b.node} to prevent overlapping partitions",
            f"[{b.node}] pydist {b.node}: 'global' requested disconnect from {c.node} to "
            f"prevent overlapping partitions ({me} lost it)",
            f"[{b.node}] pydist {b.node}: 'global' requested disconnect from {me} to "
            f"prevent overlapping partitions ({c.node} lost it)",
            f"[{c.node}] pydist {c.node}: 'global' disconnected {b.node} to prevent "
            f"overlapping partitions"}
        err, deadline = "", time.monotonic() + 5
        while not _global_lines(err) >= expected and time.monotonic() < deadline:
            time.sleep(0.05)
            err += capfd.readouterr().err
        time.sleep(0.3)                    # and nothing more
        err += capfd.readouterr().err
        assert _global_lines(err) == expected, err
    finally:
        b.stop()
        c.stop()


def test_a_node_that_stops_is_no_partition(node, tmp_path, capfd):
    """It tells its pydist peers that it leaves: the others stay a full mesh, and none of
    them reports a lost connection."""
    q, r, s = _mesh(3)
    try:
        capfd.readouterr()
        s.stop()
        assert s.node not in Node.list()
        for p in (q, r):                   # past what their servers had to say of it
            assert rpc.call(p.node, Global.sync, []) is True
        time.sleep(0.3)
        assert sorted(Node.list()) == sorted([q.node, r.node])
        assert sorted(rpc.call(q.node, Node.list, [])) == sorted([Node.self(), r.node])
        assert sorted(rpc.call(r.node, Node.list, [])) == sorted([Node.self(), q.node])
        assert _global_lines(capfd.readouterr().err) == set()
    finally:
        for p in (q, r, s):
            p.stop()


def test_a_node_that_dies_is_no_partition(node):
    """Killed, it says nothing: each survivor tells the others it lost it, and they find
    they have lost it too. The survivors stay a full mesh."""
    q, r, s = _mesh(3)
    try:
        os.kill(s.process.pid, signal.SIGKILL)
        wait_for(lambda: s.node not in Node.list(), what="the dead node gone")
        for p in (q, r):
            wait_for(lambda p=p: s.node not in rpc.call(p.node, Node.list, []))
            assert rpc.call(p.node, Global.sync, []) is True
        time.sleep(0.5)                    # what they tell each other is no reason to part
        assert sorted(Node.list()) == sorted([q.node, r.node])
        assert sorted(rpc.call(q.node, Node.list, [])) == sorted([Node.self(), r.node])
        assert sorted(rpc.call(r.node, Node.list, [])) == sorted([Node.self(), q.node])
    finally:
        for p in (q, r, s):
            p.stop()
