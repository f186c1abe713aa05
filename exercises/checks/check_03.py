"""Checks for exercise 03 · rpc."""
from pydist import BadRpc, Node, peer, rpc
from pydist._exercises import expect, unique

NODE = True
_peer = None


def _b():
    global _peer
    if _peer is None or _peer.process.poll() is not None:
        _peer = peer.start(unique("b"))
    return _peer.node


def task1(ex):
    b = _b()
    expect(ex.remote_upper(b, "hello"), "HELLO", f"remote_upper({b!r}, 'hello')")
    gone = f"gone@{Node.self().split('@')[1]}"         # no node there: nothing can run there
    try:
        got = ex.remote_upper(gone, "hello")
    except BadRpc:
        return
    raise AssertionError(f"called remote_upper({gone!r}, 'hello') (a node that is down), "
                         f"expected BadRpc, got {got!r}: the upper-casing ran here, not on the "
                         f"node. Ask the node to do it: rpc.call(node, \"str\", \"upper\", "
                         f"[text])")


def task2(ex):
    b = _b()
    got = ex.where_does_it_run(b)
    if got == Node.self():
        raise AssertionError(f"called where_does_it_run({b!r}), expected {b!r}, got {got!r}, "
                             f"the name of this node (the checker's): your function ran here. "
                             f"Send it to the node: rpc.call(node, your_function, [])")
    expect(got, b, f"where_does_it_run({b!r})")


def task3(ex):
    b = _b()
    expect(ex.call_or(0, b, "operator", "add", [1, 2]), 3,
           f"call_or(0, {b!r}, 'operator', 'add', [1, 2])")
    expect(ex.call_or(-1, b, "nosuchmodule", "f", []), -1,
           f"call_or(-1, {b!r}, 'nosuchmodule', 'f', [])")
    gone = f"gone@{Node.self().split('@')[1]}"
    expect(ex.call_or("down", gone, "os", "getpid", []), "down", f"call_or('down', {gone!r}, ...)")


def task4(ex):
    b = _b()
    expect(ex.all_names(), sorted([Node.self(), b]), "all_names()")
    assert rpc.call(b, Node.self, []) == b


TASKS = [("remote_upper runs str.upper on the other node", task1),
         ("where_does_it_run sends a function there", task2),
         ("call_or falls back on any BadRpc", task3),
         ("all_names asks every node with multicall", task4)]
