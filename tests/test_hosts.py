"""Nodes on several hosts: two network namespaces joined by a veth pair, each a host
with its own address and port mapper (issue: hardening, item 7). Needs root (CI runs
as root); elsewhere the tests skip and say why."""

import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT, stop_process

ADDRESSES = {"a": "192.0.2.1", "b": "192.0.2.2"}     # RFC 5737 test addresses

SHELL = """
import sys
from pydist import *
from pydist._process import _table
from pydist import _epmd
print(Node.start(sys.argv[1], heartbeat=1.0), flush=True)
for line in sys.stdin:
    try:
        out = repr(eval(line))
    except Exception as exc:
        out = f"error {type(exc).__name__}: {exc}"
    print(out, flush=True)
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def hosts():
    """Two namespaces, {"a": name, "b": name}, joined by a veth pair; removed after."""
    if os.geteuid() != 0:
        pytest.skip("several hosts need network namespaces, and those need root")
    tag = f"pd{os.getpid() % 100000}"
    names = {h: f"{tag}{h}" for h in ADDRESSES}
    try:
        for ns in names.values():
            _ip("netns", "add", ns)
    except (OSError, subprocess.CalledProcessError) as exc:
        for ns in names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"cannot make network namespaces here: {exc}")
    try:
        _ip("link", "add", f"{tag}va", "type", "veth", "peer", "name", f"{tag}vb")
        for h, ns in names.items():
            dev = f"{tag}v{h}"
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{ADDRESSES[h]}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield {**names, "tag": tag}
    finally:
        for ns in names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


class Host:
    """A node on one of the hosts, driven line by line: each line is evaluated there."""

    def __init__(self, ns: str, name: str, tls: str | None = None):
        env = {**os.environ, "PYDIST_COOKIE": "several-hosts"}
        if tls:
            env["PYDIST_TLS"] = tls
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-u", "-c", SHELL, name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=ROOT, env=env)
        self.node = self.proc.stdout.readline().strip()
        assert "@" in self.node, f"the node did not start: {self.proc.stderr.read()}"

    def __call__(self, expression: str):
        self.proc.stdin.write(expression + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc.stderr.close()


@pytest.fixture
def nodes(hosts):
    started = []

    def start(host: str, name: str, tls: str | None = None) -> Host:
        node = Host(hosts[host], f"{name}@{ADDRESSES[host]}", tls)
        started.append(node)
        return node
    yield start
    for node in started:
        node.stop()


def test_nodes_on_two_hosts_ping_mesh_send_and_call(nodes):
    a, b, c = nodes("a", "a"), nodes("b", "b"), nodes("b", "c")
    assert a(f"Node.ping({b.node!r})") == "'pong'"
    assert b(f"Node.ping({c.node!r})") == "'pong'"
    deadline = time.monotonic() + 5                       # the mesh: a meets c through b
    while c.node not in a("Node.list()") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert c.node in a("Node.list()"), "the mesh did not reach across hosts"
    assert a(f"rpc.call({c.node!r}, 'operator', 'add', [1, 2])") == "3"
    assert c("Process.register(self(), 'inbox')") == "True"
    a(f"send(('inbox', {c.node!r}), ('hello from', Node.self()))")
    assert c("receive(timeout=5)") == f"('hello from', {a.node!r})"
    assert b(f"rpc.call({a.node!r}, 'socket', 'gethostbyname', ['localhost'])") == \
        "'127.0.0.1'"


def test_a_cut_link_is_noticed_on_both_sides_and_healed_by_a_ping(hosts, nodes):
    a, b = nodes("a", "cuta"), nodes("b", "cutb")
    assert a(f"Node.ping({b.node!r})") == "'pong'"
    a(f"Node.monitor({b.node!r})")
    b(f"Node.monitor({a.node!r})")
    tag = hosts["tag"]
    _ip("-n", hosts["a"], "link", "set", f"{tag}va", "down")
    try:
        start = time.monotonic()
        assert a("receive(timeout=6)") == f"('nodedown', {b.node!r})"
        assert b("receive(timeout=6)") == f"('nodedown', {a.node!r})"
        assert time.monotonic() - start < 4, "a cut link took longer than the heartbeat"
    finally:
        _ip("-n", hosts["a"], "link", "set", f"{tag}va", "up")
    deadline = time.monotonic() + 5
    while a(f"Node.ping({b.node!r})") != "'pong'" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b.node in a("Node.list()"), "the link came back but the nodes did not reconnect"


def test_tls_between_hosts_and_no_entry_without_it(nodes, tmp_path):
    from pydist._tls import make_certificates
    certs = str(make_certificates(tmp_path / "workshop"))
    a, b = nodes("a", "tlsa", certs), nodes("b", "tlsb", certs)
    assert a(f"Node.ping({b.node!r})") == "'pong'"
    assert b(f"rpc.call({a.node!r}, 'operator', 'add', [2, 3])") == "5"
    assert a(f"_table.dist.peers[{b.node!r}].channel.tls is not None") == "True"
    plain = nodes("b", "plain")
    assert plain(f"Node.ping({a.node!r})") == "'pang'", "a node without TLS got in"


def test_a_mapper_takes_registrations_from_its_own_host_only(nodes):
    a = nodes("a", "home")                        # its mapper listens on 192.0.2.1
    b = nodes("b", "away")
    port = os.environ["PYDIST_EPMD_PORT"]
    alive2 = b"\x00\x11\x78\x04\xd2M\x00\x00\x06\x00\x06\x00\x04evil\x00\x00"   # ALIVE2_REQ
    register = (f"(lambda s: (s.sendall({alive2!r}), s.recv(200))[1])"
                f"(__import__('socket').create_connection(('{ADDRESSES['a']}', {port}), 3))")
    answer = b(register)
    assert answer == "b''", f"a registration from another host was answered: {answer}"
    assert a(f"_epmd.lookup('{ADDRESSES['a']}', 'evil')") == "None"
    assert b(f"Node.ping({a.node!r})") == "'pong'"      # while nodes may connect from there
