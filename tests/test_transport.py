import socket
import struct
import threading
import time

import pytest
from conftest import python

from pydist import Node, _epmd, peer, rpc
from pydist import _transport as wire
from pydist._channel import Channel


def _tag(item: bytes) -> str:
    return chr(item[0])


def test_plain_data_uses_the_c_pickler():
    item = wire.encode(("add", {"name": "nike", "qty": 30}))
    assert _tag(item) == "P"
    assert wire.decode_frame(item) == [("add", {"name": "nike", "qty": 30})]


def test_lambdas_and_closures_travel_by_value_with_cloudpickle():
    base = 10
    item = wire.encode(lambda x: x + base)
    assert _tag(item) == "V"
    assert wire.decode_frame(item)[0](1) == 11


def test_functions_defined_in_main_travel_by_value():
    import __main__
    code = compile("def twice(x):\n    return 2 * x\n", "<notebook cell>", "exec")
    exec(code, __main__.__dict__)
    try:
        item = wire.encode(__main__.twice)
        assert _tag(item) == "V"
    finally:
        del __main__.twice


def test_what_cannot_be_sent_is_a_typeerror_naming_the_object_and_the_fix():
    with socket.socket() as sock:
        with pytest.raises(TypeError, match="cannot send socket.*'socket' object.*stay on"):
            wire.encode(sock)
    lock = threading.Lock()
    with pytest.raises(TypeError, match="cannot send function.*lock.*stay on their node"):
        wire.encode(lambda: lock.acquire())


def test_one_frame_carries_several_items_in_order():
    frame = b"".join(wire.encode(i) for i in [1, "two", (3,), lambda: 4])
    out = wire.decode_frame(frame)
    assert out[:3] == [1, "two", (3,)] and out[3]() == 4


def test_a_truncated_item_is_refused():
    with pytest.raises(ValueError, match="truncated"):
        wire.decode_frame(wire.encode("hello")[:-2])


def test_a_frame_with_a_short_item_header_is_refused():
    with pytest.raises(ValueError, match="truncated"):
        wire.decode_frame(wire.encode("hello") + b"P\x00")


def _channel_pair():
    """A Channel reading one end of a socket pair; the other end is written raw."""
    from multiprocess.connection import Connection
    a, b = socket.socketpair()
    return Channel(Connection(a.detach())), b


def _frame(payload: bytes) -> bytes:
    return struct.pack("!i", len(payload)) + payload


def test_the_reader_reassembles_frames_split_and_joined_across_reads():
    channel, raw = _channel_pair()
    try:
        big = bytes(range(256)) * 2048                     # 512 KiB: past the read-ahead
        data = _frame(b"one") + _frame(b"") + _frame(b"three") + _frame(big) + _frame(b"end")

        def write():                                       # in odd pieces, as TCP may
            for i in range(0, len(data), 7001):
                raw.sendall(data[i:i + 7001])
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        got = [bytes(channel.recv()) for _ in range(5)]
        writer.join(5)
        assert got == [b"one", b"", b"three", big, b"end"], "frames came back changed"
    finally:
        channel.close()
        raw.close()


def test_a_closed_connection_reads_as_eof_every_time():
    channel, raw = _channel_pair()
    raw.sendall(_frame(b"last"))
    raw.close()
    try:
        assert bytes(channel.recv()) == b"last"
        for _ in range(2):                    # the reader and a waiting process both look
            with pytest.raises(EOFError):
                channel.recv()
    finally:
        channel.close()


def _node_port(node: str) -> int:
    return _epmd.lookup("127.0.0.1", node.split("@")[0]).port


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",          # an HTTP request
    struct.pack("!i", 2**30) + b"x" * 10,                  # an oversized length
    struct.pack("!i", 20) + b"PYDIST1 a",                  # a truncated frame
    struct.pack("!i", 9) + b"PYDIST1 x",                   # a bad greeting
])
def test_garbage_on_a_nodes_port_is_dropped_and_the_node_keeps_serving(node, garbage, capsys):
    with peer.start("helper") as helper:
        with socket.create_connection(("127.0.0.1", _node_port(node)), timeout=10) as s:
            s.sendall(garbage)
            s.settimeout(wire.HANDSHAKE_TIMEOUT + 3)
            try:
                assert s.recv(100) == b""                # closed by the node
            except ConnectionResetError:
                pass
        assert rpc.call(helper.node, "operator", "add", [1, 2]) == 3
        assert Node.ping(helper.node) == "pong"
    time.sleep(0.05)
    err = capsys.readouterr().err
    assert err.count("refused a connection from 127.0.0.1") == 1, err


def test_a_wrong_cookie_is_refused_on_both_sides(node, capsys):
    r = python(f"""
        from pydist import Node, rpc, BadRpc
        Node.start("intruder", cookie="wrong")
        print(Node.connect({node!r}), Node.ping({node!r}), Node.list())
        try:
            rpc.call({node!r}, "os", "getpid", [])
        except BadRpc as e:
            print(e.reason)
        Node.stop()""")
    assert r.stdout.split() == ["False", "pang", "[]", "nodedown"], r.stdout + r.stderr
    assert "the cookies differ" in r.stderr
    time.sleep(0.1)
    err = capsys.readouterr().err
    assert "connection attempt from node intruder@" in err and "the cookies differ" in err
    assert Node.list() == []
    with peer.start("friend") as friend:          # and this node still serves
        assert Node.ping(friend.node) == "pong"


def test_the_first_connect_is_fast(node):
    with peer.start("fast") as p:
        Node.disconnect(p.node)
        t = time.perf_counter()
        assert Node.connect(p.node)
        assert time.perf_counter() - t < 0.2, "no 44 ms Nagle stall in the handshake"


def test_large_plain_data_skips_the_search_for_main_but_large_code_does_not():
    blob = bytes(100_000)
    assert _tag(wire.encode(("blob", blob))) == "P"
    assert wire._plain(("blob", blob, {"k": [1, 2.0, None]}))
    assert not wire._plain(("blob", blob, len))
    import __main__
    exec(compile("def big():\n    return 1\n", "<cell>", "exec"), __main__.__dict__)
    try:
        assert _tag(wire.encode((blob, __main__.big))) == "V"
    finally:
        del __main__.big


def test_a_message_over_the_limit_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setattr(wire, "MAX_ITEM", 1000)
    with pytest.raises(TypeError, match="send it in chunks"):
        wire.encode(bytes(2000))
