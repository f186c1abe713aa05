"""Erlang's handshake and dialect under bad input, with no Elixir needed: this side of the
test speaks the protocol with pydist's own _beam_handshake.dial, as a BEAM node would."""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest
from conftest import HOST
from multiprocess.connection import Connection

from pydist import Node, _epmd
from pydist._beam_handshake import dial, is_erlang
from pydist._transport import SETUP_TIME, AuthenticationError

COOKIE = os.environ["PYDIST_COOKIE"].encode()


def _connect(node: str) -> socket.socket:
    port = _epmd.lookup("127.0.0.1", node.split("@")[0]).port
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(True)                 # the handshake reads the descriptor itself
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except TimeoutError:
        return False


def test_the_first_bytes_tell_the_dialects_apart():
    assert is_erlang(struct.pack("!H", 20) + b"N")
    assert not is_erlang(struct.pack("!I", 20) + b"PYDIST1")


def test_a_wrong_cookie_is_refused_as_iex_logs_it(node, capfd):
    with _connect(node) as sock:
        conn = Connection(os.dup(sock.fileno()))
        try:
            dial(conn, f"fake@{HOST}", 1, node, b"not-the-cookie")
            raise AssertionError("the node accepted a wrong cookie")
        except AuthenticationError:
            pass
        finally:
            conn.close()
    time.sleep(0.2)
    err = capfd.readouterr().err
    assert f"Connection attempt from node fake@{HOST} rejected. Invalid challenge reply." in err
    assert Node.list() == []


def test_an_erlang_greeting_that_stalls_is_dropped_and_the_node_serves_on(node):
    with _connect(node) as sock:
        sock.sendall(struct.pack("!H", 40) + b"N\x00\x00")     # and then nothing
        assert _closed_within(sock, SETUP_TIME + 3), "a stalled handshake was kept open"
    assert Node.ping(node) == "pong"


def test_a_malformed_erlang_greeting_is_refused_with_one_line(node, capfd):
    with _connect(node) as sock:
        body = b"N" + struct.pack("!QIH", 0xFFFFFFFFF, 1, 9) + b"not-valid"
        sock.sendall(struct.pack("!H", len(body)) + body)
        assert _closed_within(sock, 5)
    time.sleep(0.2)
    err = capfd.readouterr().err
    assert err.count("refused a connection") == 1, err


@pytest.mark.parametrize("term", [
    b"\x83h\x02a\x13w\x01x",                          # {19, :x}: too few elements
    b"\x83h\x04a\x13w\x01aw\x01xw\x01r",              # {19, :a, :x, :r}: no pid, no ref
], ids=["arity", "types"])
def test_a_control_message_of_the_wrong_shape_closes_only_that_connection(node, capfd, term):
    """A MONITOR_P (op 19) the node cannot act on: the connection ends, one line says
    why, and the node serves on (a watcher that is no pid would break later exits)."""
    with _connect(node) as sock:
        conn = Connection(os.dup(sock.fileno()))
        dial(conn, f"fake@{HOST}", 1, node, COOKIE)
        sock.sendall(struct.pack("!I", 1 + len(term)) + b"p" + term)
        assert _closed_within(sock, 5)
        conn.close()
    time.sleep(0.2)
    err = capfd.readouterr().err
    assert err.count(f"dropped the connection to fake@{HOST}") == 1, err
    assert "control message 19 of the wrong shape" in err
    assert Node.ping(node) == "pong"
