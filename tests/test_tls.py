"""Encrypted connections (pydist/_tls.py): a workshop's folder, nodes that speak TLS,
and nodes that cannot join without the folder. Real nodes on loopback; the same
across two hosts is in test_hosts.py."""

import os
import socket
import threading
import time

import pytest
from conftest import python, unique

from pydist import Node, _tls, peer, rpc
from pydist._process import _table


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return _tls.make_certificates(tmp_path_factory.mktemp("tls"))


def test_the_folder_has_an_authority_a_certificate_and_a_private_key(certs):
    assert sorted(p.name for p in certs.iterdir()) == ["ca.pem", "node.key", "node.pem"]
    assert (certs / "node.key").stat().st_mode & 0o777 == 0o600
    r = python("", args=["tls", str(certs / "again")])
    assert r.returncode == 0 and "copy" in r.stdout


def test_nodes_with_the_folder_talk_encrypted(certs):
    Node.start(unique("tls"), tls=str(certs))
    try:
        with peer.start(unique("tlsb")) as b:
            assert rpc.call(b.node, "operator", "add", [1, 2]) == 3
            big = rpc.call(b.node, "bytes", "fromhex", ["ab" * 300_000])   # many records
            assert big == bytes.fromhex("ab" * 300_000)
            channel = _table.dist.peers[b.node].channel
            assert channel.tls is not None, "the connection is not encrypted"
            results = []

            def calls():
                results.append([rpc.call(b.node, "operator", "mul", [i, 2])
                                for i in range(200)])
            threads = [threading.Thread(target=calls) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert results == [[2 * i for i in range(200)]] * 4, "concurrent calls over TLS"
    finally:
        Node.stop()


def test_an_idle_encrypted_connection_outlives_its_heartbeat(certs):
    # Ticks go through the writer thread when the connection is encrypted.
    Node.start(unique("tlsidle"), tls=str(certs), heartbeat=1.0)
    try:
        with peer.start(unique("tlsidleb")) as b:
            time.sleep(2.5)                         # 2.5 heartbeats with nothing to say
            assert b.node in Node.list(), "an idle TLS connection was dropped as silent"
            assert rpc.call(b.node, "operator", "add", [1, 2]) == 3
    finally:
        Node.stop()


def test_the_bytes_on_the_wire_are_not_the_pickles(certs):
    # A frame to a TLS node: what a listener on the network would see is a TLS record,
    # not pydist's greeting.
    Node.start(unique("tlsw"), tls=str(certs))
    try:
        spy, seen = socket.socket(), []
        spy.bind(("127.0.0.1", 0))
        spy.listen(1)

        def capture():
            conn, _ = spy.accept()
            with conn:
                conn.settimeout(2)
                try:
                    seen.append(conn.recv(4096))
                except OSError:
                    pass
        t = threading.Thread(target=capture)
        t.start()
        from pydist import _transport as wire
        conn = wire.open_connection(spy.getsockname(), 2, _table.dist.tls[1])
        with pytest.raises((ValueError, OSError, EOFError)):   # the spy hangs up
            wire.client_handshake(conn, Node.self(), "x@y", b"cookie")
        conn.close()
        t.join(5)
        spy.close()
        assert seen and seen[0][:1] == b"\x16", "the first bytes are not a TLS handshake"
        assert b"PYDIST1" not in seen[0]
    finally:
        Node.stop()


def test_a_node_without_the_folder_or_with_another_cannot_join(certs, tmp_path, capsys):
    other = _tls.make_certificates(tmp_path / "other")
    Node.start(unique("tlsc"), tls=str(certs))
    try:
        me = Node.self()
        plain = python(f"from pydist import Node\nNode.start('x{os.getpid()}')\n"
                       f"print(Node.ping({me!r}))")
        assert plain.stdout.strip() == "pang", plain.stderr
        stranger = python(f"from pydist import Node\nNode.start('y{os.getpid()}', "
                          f"tls={str(other)!r})\nprint(Node.ping({me!r}))")
        assert stranger.stdout.strip() == "pang", stranger.stderr
        assert "TLS" in capsys.readouterr().err, "the refusal did not say TLS"
    finally:
        Node.stop()


def test_a_folder_that_lacks_a_file_names_it_and_the_fix(tmp_path):
    with pytest.raises(ValueError, match="lacks ca.pem.*python -m pydist tls"):
        Node.start(unique("tlsd"), tls=str(tmp_path))
    assert not Node.alive()
