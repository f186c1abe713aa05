"""Checks for exercise 02 · Ping, connect, list."""
from pydist import Node, peer, rpc
from pydist._exercises import expect, unique

NODE = True


def _host():
    return Node.self().split("@")[1]


def task1(ex):
    with peer.start(unique("b")) as b:
        missing = f"nothere@{_host()}"
        expect(ex.ping_all([b.node, missing]), {b.node: "pong", missing: "pang"},
               f"ping_all([{b.node!r}, {missing!r}])")


def task2(ex):
    names = [unique("m1x"), unique("m2x")]
    called = f"start_mesh({names})"
    try:
        got = ex.start_mesh(names)
        handles = got[0] if isinstance(got, (tuple, list)) and len(got) == 2 else None
        if not isinstance(handles, (list, tuple)):
            raise AssertionError(f"called {called}, expected a pair (the peer handles, "
                                 f"sorted(Node.list())), got {got!r}")
        if not all(hasattr(p, "stop") for p in handles):
            raise AssertionError(f"called {called}, expected the handles that peer.start "
                                 f"returns as the pair's first item, got {handles!r}: keep "
                                 f"each peer.start(name)'s result (it has .node and .stop())")
        full = [f"{n}@{_host()}" for n in names]
        expect(sorted(p.node for p in handles), full, f"{called} and looked at the peers' .node")
        expect(got[1], full, called)
    finally:
        _stop_started(names)


def _stop_started(names):
    """Stop the peers start_mesh started, whatever it returned: left running, they would
    join task 3's mesh."""
    from pydist._process import _table
    for child in list(getattr(_table.dist, "children", ())):
        if child.node.split("@")[0] in names:
            child.stop()


def task3(ex):
    with peer.start(unique("w1")) as w1, peer.start(unique("w2")) as w2:
        expected = sorted([Node.self(), w2.node])
        try:
            took = ex.wait_for_mesh(w1.node, expected, 3.0)
        except TimeoutError:
            known = sorted(rpc.call(w1.node, Node.list, [], timeout=2))
            if known != expected:
                raise
            raise AssertionError(
                f"called wait_for_mesh({w1.node!r}, {expected}, 3.0), expected the seconds it "
                f"took, got TimeoutError, though {w1.node} knows exactly those nodes: your "
                f"code looked at another list. Node.list() is this node's list "
                f"({sorted(Node.list())}); ask {w1.node} for its own: "
                f"rpc.call(node, Node.list, [], timeout=...)") from None
        assert isinstance(took, float) and 0 <= took < 3, \
            f"called wait_for_mesh({w1.node!r}, {expected}), expected the seconds it took, " \
            f"got {took!r}"
        try:
            ex.wait_for_mesh(w1.node, expected + ["ghost@nowhere"], 0.3)
        except TimeoutError:
            return
        raise AssertionError("called wait_for_mesh with a node that never comes, expected "
                             "TimeoutError after 0.3 s, got a return")


TASKS = [("ping_all pings every node", task1),
         ("start_mesh starts peers and lists them", task2),
         ("wait_for_mesh waits, then gives up with TimeoutError", task3)]
