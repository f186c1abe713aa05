"""global, pg and the mesh with real Elixir nodes (_global, pg): the pydist node is a full
member of `global` (its names, :global.sync(), overlapping partitions) and of `pg`
scopes, and Elixir nodes that meet only through pydist nodes form a full mesh."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
from conftest import EPMD_PORT, HOST, unique
from test_beam import elixir_script, ex, finish

from pydist import Atom, BadRpc, Global, Node, Process, peer, pg, receive, rpc, send, spawn

pytestmark = pytest.mark.skipif(shutil.which("elixir") is None,
                                reason="needs Elixir: apt-get install -y erlang-base elixir")


def wait_for(condition, timeout: float = 10.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s (last: {value!r})")
        time.sleep(0.05)


def sleeper():
    receive(match=lambda m: m == "stop")


@pytest.fixture
def three(node):
    started = []
    try:
        for _ in range(3):
            started.append(peer.start(unique("ex"), elixir=True))
        yield [p.node for p in started]
    finally:
        for p in started:
            p.stop()


# ---------------------------------------------------------------- global

def test_global_sync_returns_at_once_and_the_python_node_is_known(three):
    for name in three:
        t0 = time.monotonic()
        assert ex(name, ":global.sync()") == "ok"
        assert time.monotonic() - t0 <= 1.0
        known = rpc.call(name, "gen_server", "call", [Atom("global_name_server"),
                                                      Atom("get_known")])
        assert Node.self() in known, known
    assert Global.sync() is True


def test_names_registered_on_either_side_are_seen_on_every_node(three):
    me = spawn(sleeper)
    assert Global.register_name("py_svc", me) == "yes"
    assert Global.register_name("py_svc", spawn(sleeper)) == "no"      # taken
    # A Python pid registered from Elixir, an Elixir pid registered from Python.
    assert ex(three[0], ":global.register_name(:py_by_ex, pid)", pid=spawn(sleeper)) == "yes"
    elixir_pid = ex(three[1], "spawn(fn -> Process.sleep(:infinity) end)")
    assert Global.register_name("ex_by_py", elixir_pid) == "yes"
    wanted = {"py_svc", "py_by_ex", "ex_by_py"}
    for name in three:
        wait_for(lambda n=name: wanted <= set(ex(n, ":global.registered_names()")),
                 what=f"all names on {name}")
        assert ex(name, ":global.whereis_name(:py_svc)") == me
        assert ex(name, ":global.whereis_name(:ex_by_py)") == elixir_pid
    assert wanted <= set(Global.registered_names())
    assert Global.whereis_name("ex_by_py") == elixir_pid
    # A message by global name, both ways.
    ex(three[2], ':global.send(:py_svc, "stop")')
    wait_for(lambda: Global.whereis_name("py_svc") is None, what="a dead process's name gone")
    for name in three:
        wait_for(lambda n=name: "py_svc" not in ex(n, ":global.registered_names()"),
                 what=f"py_svc gone on {name}")
    Global.unregister_name("ex_by_py")
    for name in three:
        wait_for(lambda n=name: ex(n, ":global.whereis_name(:ex_by_py)") == "undefined")


def test_a_clash_when_names_meet_is_resolved_as_global_does(node):
    mine = spawn(sleeper)
    assert Global.register_name("clash", mine) == "yes"
    script = elixir_script(unique("exa"), f"""
        pid = spawn(fn -> Process.sleep(:infinity) end)
        :yes = :global.register_name(:clash, pid)
        true = Node.connect(:"{Node.self()}")
        :ok = :global.sync()
        IO.inspect(node(:global.whereis_name(:clash)), label: "holder")
        Process.sleep(30_000)""")
    try:
        out = ""
        while "holder: " not in out and script.poll() is None:
            out += script.stdout.readline()
        holder = out.split("holder: ")[1].split()[0].strip(':"')
        # One process keeps the name (global's resolve_it: random_exit_name), on both.
        wait_for(lambda: getattr(Global.whereis_name("clash"), "node", None) == holder)
    finally:
        script.kill()
        script.communicate(timeout=5)


def test_after_a_disconnect_the_name_tables_agree(three):
    a, b, c = three
    assert Global.register_name("py_svc", spawn(sleeper)) == "yes"
    ex(a, ":global.register_name(:svc, spawn(fn -> Process.sleep(:infinity) end))")
    for name in three:
        wait_for(lambda n=name: {"svc", "py_svc"} <= set(ex(n, ":global.registered_names()")))
    rpc.cast(b, "Elixir.Node", "disconnect", [Atom(Node.self())])
    # OTP 25's prevent_overlapping_partitions: the others drop this node too.
    wait_for(lambda: not set(three) & set(Node.list()), what="every Elixir node dropping us")
    assert Global.registered_names() == ["py_svc"]
    out = _look(three)
    assert out.count("names: [:svc]") == 3, out
    assert "sees python: true" not in out, out


def _look(nodes: list[str]) -> str:
    """What each of ``nodes`` holds, asked by a hidden Elixir node (hidden: no global)."""
    script = f"""
        nodes = [{", ".join(f':"{n}"' for n in nodes)}]
        Enum.each(nodes, &Node.connect/1)
        for n <- nodes, do: IO.inspect(Enum.sort(:erpc.call(n, :global, :registered_names, [])),
                                       label: "names")
        for n <- nodes, do: IO.inspect(:"{Node.self()}" in :erpc.call(n, Node, :list, []),
                                       label: "sees python")
        """
    process = subprocess.Popen(
        ["elixir", "--sname", unique("look"), "--hidden", "--cookie",
         os.environ["PYDIST_COOKIE"], "--erl",
         "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false", "-e", script],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "ERL_EPMD_PORT": str(EPMD_PORT)})
    return finish(process)


# ---------------------------------------------------------------- the mesh

def test_elixir_nodes_that_meet_only_through_pydist_nodes_form_a_full_mesh(node):
    q = peer.start(unique("py"))                       # a second pydist node
    a = peer.start(unique("exa"), elixir=True)         # knows only this node
    b_name, c_name = unique("exb"), unique("exc")
    hold = 'Process.sleep(30_000)'
    others = [elixir_script(n, f'true = Node.connect(:"{q.node}"); {hold}')
              for n in (b_name, c_name)]                # know only q
    try:
        everyone = {a.node, f"{b_name}@{HOST}", f"{c_name}@{HOST}"}
        for name in everyone:
            wait_for(lambda n=name: n in Node.list(), what=f"{name} reaching this node")
            wait_for(lambda n=name: everyone - {n} <= set(ex(n, "Node.list()")),
                     what=f"{name} connected to the other Elixir nodes")
            assert ex(name, ":global.sync()") == "ok"
    finally:
        for process in others:
            process.kill()
            process.communicate(timeout=5)
        a.stop()
        q.stop()


# ---------------------------------------------------------------- pg

def test_python_and_elixir_processes_share_a_pg_group(node):
    e = peer.start(unique("ex"), elixir=True)
    try:
        ex(e.node, "{:ok, _} = :pg.start(:pg); :ok")
        mine = spawn(sleeper)
        assert pg.join("chat", mine) == "ok"
        theirs = ex(e.node, "pid = spawn(fn -> Process.sleep(:infinity) end); "
                            ":ok = :pg.join(:chat, pid); pid")
        wait_for(lambda: set(pg.get_members("chat")) == {mine, theirs})
        wait_for(lambda: set(ex(e.node, ":pg.get_members(:chat)")) == {mine, theirs})
        assert pg.get_local_members("chat") == [mine]
        assert pg.which_groups() == ["chat"]
        # A PubSub in four lines: Elixir broadcasts to every member, Python's included.
        ex(e.node, 'for p <- :pg.get_members(:chat), do: send(p, {:news, "hi"})')
        ref, groups = pg.monitor_scope()
        assert set(groups["chat"]) == {mine, theirs}
        ex(e.node, "Process.exit(pid, :kill)", pid=theirs)
        assert receive(timeout=5, match=lambda m: m[0] == ref) == (ref, "leave", "chat", [theirs])
        assert pg.get_members("chat") == [mine]
        assert pg.leave("chat", mine) == "ok" and pg.leave("chat", mine) == "not_joined"
        wait_for(lambda: ex(e.node, ":pg.get_members(:chat)") == [])
        pg.join("chat", mine)
        wait_for(lambda: ex(e.node, ":pg.get_members(:chat)") == [mine])
    finally:
        e.stop()
    wait_for(lambda: e.node not in Node.list())
    assert pg.get_members("chat") == [mine]


def test_pg_between_pydist_nodes_and_a_dead_nodes_members_vanish(node):
    q = peer.start(unique("py"))
    try:
        theirs = Node.spawn(q.node, sleeper)
        assert rpc.call(q.node, "pydist.pg", "join", ["room", theirs]) == "ok"
        mine = spawn(sleeper)
        pg.join("room", mine)
        wait_for(lambda: set(pg.get_members("room")) == {mine, theirs})
        wait_for(lambda: set(rpc.call(q.node, "pydist.pg", "get_members", ["room"]))
                 == {mine, theirs})
    finally:
        q.stop()
    wait_for(lambda: pg.get_members("room") == [mine], what="q's member gone with q")
    send(mine, "stop")
    wait_for(lambda: pg.get_members("room") == [])
    assert Process.alive(mine) is False


def test_a_partition_global_made_is_not_bridged_by_the_python_node(three):
    a, b, c = three
    for name in three:                # the mesh formed and synced first
        wait_for(lambda n=name: set(three) - {n} <= set(ex(n, "Node.list()")))
        assert ex(name, ":global.sync()") == "ok"
    rpc.cast(a, "Elixir.Node", "disconnect", [Atom(b)])
    # Every node drops one side (which one, when both sides tell, is a race in OTP too).
    for name in (Node.self(), c):
        look = (lambda: set(Node.list())) if name == Node.self() else \
            (lambda n=name: set(ex(n, "Node.list()")))
        wait_for(lambda f=look: not {a, b} <= f(), what=f"{name} leaving the partition")
    for name in set(three) & set(Node.list()):
        try:                          # a node may drop us meanwhile: also no bridge
            ex(name, ":global.sync()")
        except BadRpc as exc:
            assert exc.reason == "nodedown", exc
    assert not {a, b} <= set(Node.list())
    if a in Node.list():
        assert b not in ex(a, "Node.list()")
