"""A pydist node and real Elixir nodes: the Rosetta across the border (_beam, _beam_calls,
_beam_handshake). Every BEAM node here is a real `elixir` OS process on loopback, using
this session's port mapper (ERL_EPMD_PORT); the Elixir side is driven with `:rpc`-style
calls into it (`Code.eval_string`) or runs its own script."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest
from conftest import EPMD_PORT, HOST, spawn_python, unique

from pydist import (
    Atom,
    BadRpc,
    Node,
    Process,
    ProcessExit,
    _beam_handshake,
    peer,
    receive,
    rpc,
    self,
    send,
    spawn,
)
from pydist._etf import Opaque

pytestmark = pytest.mark.skipif(shutil.which("elixir") is None,
                                reason="needs Elixir: apt-get install -y erlang-base elixir")

COOKIE = os.environ["PYDIST_COOKIE"]


@pytest.fixture(autouse=True)
def empty_mailbox_afterwards():
    """Tests here monitor nodes they then stop: the last ("nodedown", ...) arrives as
    the node stops. Leave this process's mailbox empty for the next test."""
    yield
    from pydist._process import _table
    proc = _table.main_proc
    if proc is not None:
        while True:
            try:
                receive(timeout=0)
            except TimeoutError:
                break


def ex(node: str, code: str, timeout: float = 30, **binding):
    """Evaluate Elixir ``code`` on ``node`` (in a process of its own there), with
    ``binding`` as its variables (Code.eval_string's keyword list)."""
    variables = [(Atom(key), value) for key, value in binding.items()]
    return rpc.call(node, "Elixir.Code", "eval_string", [code, variables], timeout=timeout)[0]


@pytest.fixture
def beam(node):
    """A real Elixir node started by this one: (its name, the Peer)."""
    server = peer.start(unique("ex"), elixir=True)
    try:
        yield server.node, server
    finally:
        server.stop()


def elixir_script(name: str, script: str, cookie: str = COOKIE) -> subprocess.Popen:
    """A free-standing `elixir --sname NAME -e SCRIPT`, as a learner's terminal would run."""
    return subprocess.Popen(
        ["elixir", "--sname", name, "--cookie", cookie, "--erl",
         "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false", "-e", script],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "ERL_EPMD_PORT": str(EPMD_PORT)})


def finish(process: subprocess.Popen, timeout: float = 20) -> str:
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate(timeout=5)
    return out


# ---------------------------------------------------------------- ping, list, terms

def test_ping_both_ways_and_the_python_node_is_visible_there(beam):
    name, _ = beam
    assert Node.ping(name) == "pong"
    assert name in Node.list()
    me = Node.self()
    assert ex(name, f'Node.ping(:"{me}")') == "pong"
    assert ex(name, "Node.list()") == [me], "the Python node is a visible node in Node.list()"
    assert Node.ping(f"nobody@{HOST}") == "pang"


def test_terms_cross_both_ways_as_the_table_says(beam):
    name, _ = beam
    value = (Atom("add"), "héllo", b"\xff\x00", 2**100, -7, 1.5, [1, [2]], {"k": None},
             True, False, None, [104, 105])
    back = ex(name, "fn x -> x end")                   # a fun arrives as an opaque value
    assert isinstance(back, Opaque)
    assert rpc.call(name, "Elixir.Function", "identity", [value]) == value
    assert rpc.call(name, "Elixir.String", "upcase", ["hi"]) == "HI"
    assert rpc.call(name, "erlang", "is_atom", [Atom("x")]) is True
    assert rpc.call(name, "erlang", "is_binary", ["x"]) is True, "a str is an Elixir string"
    assert rpc.call(name, "erlang", "node", []) == name
    assert rpc.call(name, "Elixir.Function", "identity", [back]) == back, \
        "an opaque term goes back unchanged"
    with pytest.raises(TypeError, match="set"):
        rpc.call(name, "Elixir.Function", "identity", [{1, 2}])
    with pytest.raises(TypeError, match="function"):
        rpc.call(name, lambda: 1)


# ---------------------------------------------------------------- send / receive

def test_send_and_receive_both_ways_by_pid_and_by_name(beam):
    name, _ = beam
    me = self()
    Process.register(me, "py_inbox")
    try:
        ex(name, f'send({{:py_inbox, :"{Node.self()}"}}, {{:hello, self(), "from elixir"}})')
        msg = receive(timeout=5)
        assert msg[0] == "hello" and msg[2] == "from elixir", msg
        assert isinstance(msg[0], Atom)
        elixir_pid = ex(name, """
            pid = spawn(fn -> receive do {from, x} -> send(from, {:echo, x}) end end)
            Process.register(pid, :echo)
            pid""")
        send(elixir_pid, (me, "by pid"))
        assert receive(timeout=5) == ("echo", "by pid")
        ex(name, "Process.register(spawn(fn -> receive do {from, x} -> "
                 "send(from, {:echo, x}) end end), :echo2)")
        send(("echo2", name), (me, "by name"))
        assert receive(timeout=5) == ("echo", "by name")
    finally:
        Process.unregister("py_inbox")


# ---------------------------------------------------------------- rpc both ways

def test_rpc_into_elixir_and_its_failures(beam):
    name, _ = beam
    with pytest.raises(BadRpc) as info:
        rpc.call(name, "Elixir.String", "nope", ["x"])
    assert "undef" in str(info.value)
    assert info.value.reason[0] == "EXIT" and info.value.reason[1][0] == "undef"
    py = peer.start(unique("py"))
    try:
        results, bad = rpc.multicall([name, py.node, f"gone@{HOST}"], "erlang", "node", [])
        assert results[0] == name, "the BEAM node answers"
        assert isinstance(results[1], BadRpc) and results[1].reason == "undef", \
            "a pydist node has no module erlang: its BadRpc is in the results, as Erlang's"
        assert bad == [f"gone@{HOST}"]
    finally:
        py.stop()


def test_rpc_from_elixir_into_python(beam):
    name, _ = beam
    me = Node.self()
    assert ex(name, f':rpc.call(:"{me}", :operator, :add, [1, 2])') == 3
    assert ex(name, f':erpc.call(:"{me}", :str, :upper, ["hi"])') == "HI"
    bad = ex(name, f':rpc.call(:"{me}", :operator, :nope, [1])')
    assert bad[0] == "badrpc" and bad[1][0] == "EXIT" and bad[1][1][0] == "undef", bad
    failed = ex(name, f':rpc.call(:"{me}", :operator, :truediv, [1, 0])')
    assert failed[0] == "badrpc" and "ZeroDivisionError" in repr(failed), failed
    results = ex(name, f':rpc.multicall([:"{me}", node()], :erlang, :is_atom, [:a])')
    assert results[0][-1] is True


def test_what_a_call_from_elixir_prints_shows_on_the_caller():
    """A Python node in its own process (as `python -m pydist` would run); an Elixir
    script calls a function there that prints: the text appears in Elixir's output."""
    name = unique("pyout")
    node = spawn_python(f"""
        import sys
        from pydist import Node
        Node.start("{name}")
        print("ready", flush=True)
        sys.stdin.read()
        Node.stop()""")
    try:
        assert node.stdout.readline().strip() == "ready"
        out = finish(elixir_script(unique("term"), f"""
            :rpc.call(:"{name}@{HOST}", :builtins, :print, ["printed in python"])
            IO.puts("done")"""))
        assert out.splitlines() == ["printed in python", "done"], out
    finally:
        node.stdin.close()
        node.wait(10)


# ---------------------------------------------------------------- monitors, links, nodedown

def test_monitors_both_ways(beam):
    name, _ = beam
    elixir_pid = ex(name, "spawn(fn -> receive do :stop -> :ok end end)")
    ref = Process.monitor(elixir_pid)
    send(elixir_pid, Atom("stop"))
    down = receive(timeout=5)
    assert down[0] == "DOWN" and down[1] == ref and down[4] == "normal", down

    mine = spawn(lambda: receive(timeout=10))
    ex(name, """spawn(fn -> ref = Process.monitor(pid)
                            send(back, :monitoring)
                            receive do {:DOWN, ^ref, :process, _, why} -> send(back, {:down, why})
                            end end)""", pid=mine, back=self())
    assert receive(timeout=5) == "monitoring"
    send(mine, "go")
    assert receive(timeout=5) == ("down", "normal")


def test_a_linked_elixir_process_exits_when_the_python_process_dies(beam):
    name, _ = beam

    def victim():
        receive(timeout=10)
        raise RuntimeError("the Python process crashed")
    pid = spawn(victim)
    why = ex(name, """
        parent = self()
        linked = spawn(fn -> Process.link(pid); send(parent, :linked); Process.sleep(:infinity) end)
        receive do :linked -> :ok end
        ref = Process.monitor(linked)
        send(pid, :crash)
        receive do {:DOWN, ^ref, :process, _, why} -> why after 5000 -> :still_alive end""",
             timeout=15, pid=pid)
    assert why not in ("still_alive", "normal") and "RuntimeError" in repr(why), why


def test_killed_elixir_node_is_nodedown_at_once_and_monitors_say_noconnection(beam):
    name, server = beam
    Node.monitor(name)
    elixir_pid = ex(name, "spawn(fn -> Process.sleep(:infinity) end)")
    ref = Process.monitor(elixir_pid)
    started = time.monotonic()
    os.kill(server.os_pid, signal.SIGKILL)
    got = {receive(timeout=5)[0] for _ in range(2)}
    assert got == {"nodedown", "DOWN"}, got
    assert time.monotonic() - started < 2
    assert name not in Node.list()
    assert ref is not None


# ---------------------------------------------------------------- refusals and garbage

def test_wrong_cookie_is_refused_both_ways(node, capfd):
    out = finish(elixir_script(unique("bad"), f"""
        IO.inspect(Node.connect(:"{Node.self()}"), label: "connect")""", cookie="wrong"))
    assert "connect: false" in out, out
    err = capfd.readouterr().err
    assert "rejected" in err and "Invalid challenge reply" in err, err
    assert Node.list() == []


def test_garbage_from_a_beam_speaking_peer_closes_only_that_connection(node, capfd):
    from pydist import _epmd
    port = _epmd.lookup("127.0.0.1", node.split("@")[0]).port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setblocking(True)            # the handshake reads the descriptor itself
        from multiprocess.connection import Connection
        conn = Connection(os.dup(sock.fileno()))
        _beam_handshake.dial(conn, f"fake@{HOST}", 1, node, COOKIE.encode())
        sock.sendall(struct.pack("!I", 5) + b"p\x83\x68\xff\x00")   # a truncated tuple
        sock.settimeout(5)
        while sock.recv(65536):           # what it sent first (its mesh watcher), then the end
            pass
        conn.close()
    err = capfd.readouterr().err
    assert err.count(f"fake@{HOST}") == 1, err
    assert Node.ping(node) == "pong"


# ---------------------------------------------------------------- the mesh

def test_a_python_node_joins_a_beam_cluster_and_later_nodes_reach_it(node):
    a = peer.start(unique("exa"), elixir=True)
    b = peer.start(unique("exb"), elixir=True)
    try:
        assert ex(b.node, f'Node.connect(:"{a.node}")') is True
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and {a.node, b.node} - set(Node.list()):
            time.sleep(0.05)
        assert {a.node, b.node} <= set(Node.list())
        later = elixir_script(unique("exc"), f"""
            true = Node.connect(:"{a.node}")
            Process.sleep(1500)
            IO.inspect(:"{Node.self()}" in Node.list(), label: "sees python")""")
        out = finish(later)
        assert "sees python: true" in out, out
    finally:
        b.stop()
        a.stop()


def test_a_cookie_the_elixir_node_does_not_share_is_refused_from_python_too(node, capfd):
    name = unique("other")
    elixir = elixir_script(name, "IO.puts(:ready); Process.sleep(10_000)", cookie="other")
    try:
        assert elixir.stdout.readline().strip() == "ready"
        assert Node.connect(f"{name}@{HOST}") is False
        assert Node.ping(f"{name}@{HOST}") == "pang"
        err = capfd.readouterr().err
        assert "the cookies differ" in err, err
    finally:
        elixir.kill()
        elixir.communicate(timeout=10)


def test_an_idle_connection_to_elixir_outlives_pydists_heartbeat():
    """Our ticks keep the BEAM node content; its ticks (every 15 s) never trip our
    heartbeat, which for a BEAM node waits Erlang's tick time."""
    Node.start(unique(), heartbeat=0.5)
    try:
        server = peer.start(unique("ex"), elixir=True)
        try:
            time.sleep(2.0)                        # four heartbeats of silence from Elixir
            assert server.node in Node.list()
            assert ex(server.node, "Node.list()") == [Node.self()]
        finally:
            server.stop()
    finally:
        Node.stop()


def test_a_disconnect_is_nodedown_and_the_next_call_connects_again(beam):
    name, _ = beam
    Node.monitor(name)
    assert Node.disconnect(name) is True
    assert receive(timeout=5) == ("nodedown", name)
    assert name not in Node.list()
    assert ex(name, "Node.list()") == [Node.self()], "a call connects again"


def test_an_exit_signal_from_elixir_kills_or_is_trapped_as_in_erlang(beam):
    """Process.exit(pid, :shutdown) from Elixir kills a Python process that does not
    trap exits (this thread raises ProcessExit at its next pydist call and gets a new
    pid, as iex's shell); one that traps gets ("EXIT", from, reason); :kill is never
    trapped."""
    name, _ = beam
    first = self()
    with pytest.raises(ProcessExit) as died:      # in ex's wait, or in receive
        ex(name, "Process.exit(pid, :shutdown)", pid=first)
        receive(timeout=5)
    assert died.value.reason == "shutdown"
    assert self() != first
    assert Process.flag("trap_exit", True) is False
    ex(name, "Process.exit(pid, :shutdown)", pid=self())
    msg = receive(timeout=5)
    assert msg[0] == "EXIT" and msg[2] == "shutdown" and msg[1].node == name, msg
    trapping = self()
    with pytest.raises(ProcessExit) as died:
        ex(name, "Process.exit(pid, :kill)", pid=trapping)
        receive(timeout=5)
    assert died.value.reason == "killed"
    assert self() != trapping and Process.flag("trap_exit", False) is False


def test_killing_the_python_node_is_nodedown_in_elixir_at_once():
    name = unique("pyk")
    node = spawn_python(f"""
        import sys
        from pydist import Node
        Node.start("{name}")
        print("ready", flush=True)
        sys.stdin.read()""")
    try:
        assert node.stdout.readline().strip() == "ready"
        watcher = elixir_script(unique("watch"), f"""
            true = Node.connect(:"{name}@{HOST}")
            Node.monitor(:"{name}@{HOST}", true)
            IO.puts("watching")
            t = System.monotonic_time(:millisecond)
            receive do
              {{:nodedown, _}} ->
                IO.puts("nodedown after #{{System.monotonic_time(:millisecond) - t}} ms")
            after 10_000 -> IO.puts("no nodedown") end""")
        assert watcher.stdout.readline().strip() == "watching"
        node.kill()
        out = finish(watcher)
        assert "nodedown after" in out, out
        assert int(out.split("nodedown after ")[1].split()[0]) < 2000, out
    finally:
        node.kill()
        node.wait(10)


# ---------------------------------------------------------------- peer.start(elixir=True)

def test_what_an_elixir_peer_prints_shows_here_labelled(beam, capfd):
    name, _ = beam
    ex(name, 'IO.puts("hello from elixir")')
    time.sleep(0.3)
    out = capfd.readouterr().out
    assert f"[{name}] hello from elixir" in out, out


def test_an_elixir_peer_never_outlives_its_starter():
    name = unique("starter")
    starter = spawn_python(f"""
        from pydist import Node, peer
        Node.start("{name}")
        p = peer.start("{name}ex", elixir=True)
        print(p.os_pid, flush=True)
        import time; time.sleep(60)""")
    try:
        elixir_pid = int(starter.stdout.readline())
        starter.kill()
        starter.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(elixir_pid):
            time.sleep(0.1)
        assert not _alive(elixir_pid), "the Elixir peer outlived the node that started it"
    finally:
        starter.kill()
        starter.wait(10)


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False



def test_the_pydist_peers_of_a_node_meet_the_elixir_node_it_connects_to(node):
    py = peer.start(unique("py"))
    try:
        elixir = elixir_script(unique("exm"), "IO.puts(:ready); Process.sleep(15_000)")
        try:
            assert elixir.stdout.readline().strip() == "ready"
            name = f"{elixir.args[2]}@{HOST}"
            assert Node.connect(name)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and name not in rpc.call(py.node, Node.list, []):
                time.sleep(0.05)
            assert name in rpc.call(py.node, Node.list, []), "the mesh left the peer out"
            assert py.node in ex(name, "Node.list()"), "and the Elixir node sees that peer"
        finally:
            elixir.kill()
            elixir.communicate(timeout=10)
    finally:
        py.stop()


@pytest.mark.parametrize("elixir_name", ["aaa", "zzz"])      # below and above ours
def test_both_dialling_at_once_ends_with_one_connection(elixir_name):
    """Python and Elixir connect to each other at the same moment: Erlang's rule (the
    greater name's connection wins) leaves exactly one, seen from both sides."""
    Node.start(unique("mmm"))
    name = f"{elixir_name}{unique()}"
    elixir = subprocess.Popen(
        ["elixir", "--sname", name, "--cookie", COOKIE, "--erl",
         "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false", "-e", f"""
            IO.puts("ready"); IO.gets("")
            IO.inspect(Node.connect(:"{Node.self()}"), label: "connect")
            Process.sleep(1000); IO.inspect(Node.list(), label: "list")
            Process.sleep(5000)"""],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "ERL_EPMD_PORT": str(EPMD_PORT)})
    try:
        assert elixir.stdout.readline().strip() == "ready"
        Node.monitor(f"{name}@{HOST}")
        elixir.stdin.write("go\n")
        elixir.stdin.flush()
        assert Node.connect(f"{name}@{HOST}") is True
        said = [elixir.stdout.readline().strip() for _ in range(2)]
        assert said == ["connect: true", f"list: [:{Node.self()}]"], said
        with pytest.raises(TimeoutError):        # no nodedown while both were up
            receive(timeout=0.2, match=lambda m: m == ("nodedown", f"{name}@{HOST}"))
        assert Node.list() == [f"{name}@{HOST}"]
    finally:
        elixir.kill()
        elixir.communicate(timeout=10)
        Node.stop()


# ---------------------------------------------------------------- what Elixir asks of Python

def test_a_spawn_request_from_elixir_starts_a_python_process_or_one_that_exits_undef(beam):
    """Node.spawn(py, M, F, A) from Elixir is a SPAWN_REQUEST: a pydist process whose
    end the monitor reports; for a function that is not there, as on a BEAM node, a
    process that exits {:undef, [{M, F, A, []}]} (Node.spawn(py, fn -> ... end) too)."""
    name, _ = beam
    me = Node.self()
    started = ex(name, f"""
        ref = :erlang.spawn_request(:"{me}", :builtins, :len, [[1, 2]], [:monitor])
        receive do {{:DOWN, ^ref, :process, pid, why}} -> {{node(pid), why}}
        after 5000 -> :no_down end""")
    assert started == (me, "normal"), started
    undef = ex(name, f"""
        ref = :erlang.spawn_request(:"{me}", :nosuchmodule, :f, [], [:monitor])
        receive do {{:DOWN, ^ref, :process, _, why}} -> why after 5000 -> :no_down end""")
    assert undef == ("undef", [("nosuchmodule", "f", [], [])]), undef
    fun = ex(name, f"""
        {{_pid, ref}} = Node.spawn_monitor(:"{me}", fn -> :ok end)
        receive do {{:DOWN, ^ref, :process, _, why}} -> elem(why, 0) after 5000 -> :no_down end""")
    assert fun == "undef", fun


def test_rex_answers_an_erl_interface_style_call(beam):
    name, _ = beam
    me = Node.self()
    assert ex(name, f"""
        send({{:rex, :"{me}"}}, {{self(), {{:call, :operator, :add, [1, 2], :user}}}})
        receive do {{:rex, r}} -> r after 5000 -> :no_answer end""") == 3
    failed = ex(name, f"""
        send({{:rex, :"{me}"}}, {{self(), {{:call, :operator, :nope, [1], :user}}}})
        receive do {{:rex, r}} -> r after 5000 -> :no_answer end""")
    assert failed[0] == "badrpc" and failed[1][0] == "EXIT" and failed[1][1][0] == "undef", \
        failed


def test_io_format_over_there_is_formatted_by_elixir_and_shown_here(beam, capfd):
    name, _ = beam
    assert rpc.call(name, "io", "format", [[126, 112, 126, 110], [[1, 2]]]) == "ok"
    time.sleep(0.3)
    out = capfd.readouterr().out
    assert f"[{name}] [1,2]" in out, out


def test_a_message_sent_under_seq_trace_arrives_all_the_same(beam):
    """A process with a trace token sends SEND_TT/REG_SEND_TT: the token is dropped."""
    name, _ = beam
    Process.register(self(), "traced_inbox")
    try:
        ex(name, f"""
            :seq_trace.set_token(:label, 7)
            send(pid, :by_pid)
            send({{:traced_inbox, :"{Node.self()}"}}, :by_name)""", pid=self())
        assert {receive(timeout=5), receive(timeout=5)} == {"by_pid", "by_name"}
    finally:
        Process.unregister("traced_inbox")


def test_a_link_to_an_elixir_node_that_dies_gives_noconnection(node):
    """A link to a process of a node that is lost: a trapping Python process gets
    ("EXIT", pid, "noconnection"); one that does not trap dies of it."""
    server = peer.start(unique("exl"), elixir=True)
    me = self()

    def linked(trap):
        Process.flag("trap_exit", trap)
        send(me, ("ready", trap))
        send(me, receive(timeout=10))
    trapping, plain = spawn(linked, True), spawn(linked, False)
    for trap in (True, False):
        receive(timeout=5, match=lambda m, t=trap: m == ("ready", t))
    watch = Process.monitor(plain)
    ex(server.node, """parent = self()
        spawn(fn -> Process.link(a); Process.link(b); send(parent, :linked)
                    Process.sleep(:infinity) end)
        receive do :linked -> :ok end""", a=trapping, b=plain)  # LINKs first, on one link
    os.kill(server.os_pid, signal.SIGKILL)
    msg = receive(timeout=5, match=lambda m: m[0] == "EXIT")
    assert msg[2] == "noconnection" and msg[1].node == server.node, msg
    down = receive(timeout=5, match=lambda m: m[0] == "DOWN" and m[1] == watch)
    assert down[4] == "noconnection", down
    server.stop()
