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
from test_global import wait_for

from pydist import Atom, Global, Node, Process, peer, pg, receive, rpc, send, spawn

pytestmark = pytest.mark.skipif(shutil.which("elixir") is None,
                                reason="needs Elixir: apt-get install -y erlang-base elixir")


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


def _views(nodes: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """What each of ``nodes`` holds: (its global names, its Node.list()), both sorted,
    asked by a hidden Elixir node (hidden: no global, and it joins no partition)."""
    script = f"""
        for n <- [{", ".join(f':"{n}"' for n in nodes)}] do
          true = Node.connect(n)
          names = Enum.sort(:erpc.call(n, :global, :registered_names, []))
          seen = Enum.sort(:erpc.call(n, Node, :list, []))
          IO.puts("view #{{n}} #{{Enum.join(names, ",")}} #{{Enum.join(seen, ",")}}")
        end
        """
    process = subprocess.Popen(
        ["elixir", "--sname", unique("look"), "--hidden", "--cookie",
         os.environ["PYDIST_COOKIE"], "--erl",
         "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false", "-e", script],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "ERL_EPMD_PORT": str(EPMD_PORT)})
    out = finish(process)
    views = {}
    for line in out.splitlines():
        if line.startswith("view "):
            _, node, names, seen = (line + " ").split(" ", 3)
            views[node] = ([n for n in names.split(",") if n],
                           [n for n in seen.strip().split(",") if n])
    assert set(views) == set(nodes), out
    return views


def _groups(lists: dict[str, list[str]]) -> set[frozenset] | None:
    """The partition that the nodes' Node.list() views make, or None while they overlap.
    OTP 25's prevent_overlapping_partitions ends every overlap: each node then sees all
    of its group and no one else."""
    groups = {n: frozenset([n, *seen]) for n, seen in lists.items()}
    if any(groups.get(m, group) != group for group in groups.values() for m in group):
        return None
    return set(groups.values())


def _wait_for_partition(views, first: str, second: str) -> set[frozenset]:
    """Once ``first`` has disconnected ``second`` in a full mesh: the partition OTP leaves,
    seen the same twice in a row (15 s at most). ``views()`` gives each node's Node.list().
    Which side keeps whom is a race in OTP itself: global on each other node drops the
    first of the two it hears has lost the other. Among four Elixir nodes, d disconnecting
    b ended as {a, c} {b} {d} and as {a, b, c} {d}; what always holds is that no groups
    overlap and first and second end apart."""
    seen: list = [None]

    def settled():
        lists = views()
        groups = _groups(lists)
        if groups is not None and any(first in g and second in g for g in groups):
            raise AssertionError(f"{first} and {second} together again: {lists}")
        stable = groups is not None and groups == seen[-1]
        seen.append(groups)
        return groups if stable else None
    try:
        return wait_for(settled, timeout=15, what="a partition without overlaps")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: last views {views()}") from None


def _elixir_lists(nodes: list[str]):
    return lambda: {n: seen for n, (names, seen) in _views(nodes).items()}


@pytest.mark.parametrize("who", ["elixir drops python", "python drops elixir"])
def test_after_a_disconnect_the_partitions_and_name_tables_are_otps(three, who):
    a, b, c = three
    assert Global.register_name("py_svc", spawn(sleeper)) == "yes"
    ex(a, ":global.register_name(:svc, spawn(fn -> Process.sleep(:infinity) end))")
    for name in three:
        wait_for(lambda n=name: {"svc", "py_svc"} <= set(ex(n, ":global.registered_names()")))
    if who == "elixir drops python":
        rpc.cast(b, "Elixir.Node", "disconnect", [Atom(Node.self())])
    else:
        assert Node.disconnect(b) is True
    # OTP 25's prevent_overlapping_partitions: a and c drop both b and this node.
    me = Node.self()
    groups = _wait_for_partition(
        lambda: {**_elixir_lists(three)(), me: Node.list()}, b, me)
    # Each group keeps the names of its own nodes' processes, on every node in it.
    views = _views(three)
    owner = {"svc": a, "py_svc": me}
    for group in groups:
        names = sorted(name for name, at in owner.items() if at in group)
        for n in group:
            held = Global.registered_names() if n == me else views[n][0]
            assert sorted(held) == names, f"{n} in {sorted(group)}: {held}, {views}"


def test_the_same_with_an_elixir_node_in_pythons_place(node):
    """The baseline of the test above, four Elixir nodes and no Python: d disconnects b."""
    a, b, c, d = [unique(f"ex{x}") for x in "abcd"]
    hold = "Process.sleep(30_000)"
    scripts = [elixir_script(n, hold) for n in (b, c, d)]
    names = [f"{n}@{HOST}" for n in (a, b, c, d)]
    scripts.append(elixir_script(a, f"""
        for n <- [{", ".join(f':"{n}"' for n in names[1:])}] do
          Stream.repeatedly(fn -> Node.connect(n) end) |> Enum.find(& &1)
        end
        for n <- Node.list() do       # the full mesh, then d disconnects b
          Stream.repeatedly(fn -> :erpc.call(n, Node, :list, []) end)
          |> Enum.find(fn seen -> length(seen) == 3 end)
          :ok = :erpc.call(n, :global, :sync, [])
        end
        true = :erpc.call(:"{names[3]}", Node, :disconnect, [:"{names[1]}"])
        IO.puts("disconnected")
        {hold}"""))
    try:
        out = ""                      # the script ends (EOF) if any step fails
        while "disconnected" not in out and scripts[-1].poll() is None:
            out += scripts[-1].stdout.readline()
        assert "disconnected" in out, out
        _wait_for_partition(_elixir_lists(names), names[3], names[1])
    finally:
        for process in scripts:
            process.kill()
            process.communicate(timeout=5)


def _node_list() -> list[str]:
    return sorted(Node.list())


def test_with_a_beam_node_among_them_pydist_nodes_end_apart_as_otps(node):
    """The BEAM node hears that we lost q, drops q, and tells q, which then says that
    it lost us: every connection between the three ends, as among three Elixir nodes."""
    q, a = peer.start(unique("pyq")), peer.start(unique("ex"), elixir=True)
    try:
        wait_for(lambda: a.node in rpc.call(q.node, _node_list, []), what="q meeting a")
        assert rpc.call(q.node, Global.sync, []) is True and ex(a.node, ":global.sync()") == "ok"
        assert Node.disconnect(q.node) is True
        wait_for(lambda: Node.list() == [], what="a dropping this node")
        wait_for(lambda: _views([a.node])[a.node][1] == [], what="a dropping both")
        assert rpc.call(q.node, _node_list, []) == [Node.self()]      # a new connection
    finally:
        q.stop()
        a.stop()


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


def test_a_message_that_fails_is_dropped_and_the_servers_live_on(node, monkeypatch):
    """global's and pg's servers answer other nodes: what breaks them is logged, not fatal."""
    from pydist._process import _table
    logged: list[str] = []
    monkeypatch.setattr(_table.dist, "log", logged.append)
    pg.start()
    assert Global.registered_names() == []                 # (its server is up)
    servers = Process.whereis("global_name_server"), Process.whereis("pg")
    send("global_name_server", (Atom("$gen_cast"), (Atom("init_connect"), 1, 2, 3)))
    send("pg", (Atom("$gen_cast"), (Atom("sync"), 1, 2)))
    wait_for(lambda: all(any(line.startswith(what) for line in logged) for what in
                         ("global_name_server dropped", "pg scope pg dropped")),
             what="a log line from each")
    assert (Process.whereis("global_name_server"), Process.whereis("pg")) == servers
    assert Global.register_name("still_here", spawn(sleeper)) == "yes"
    assert pg.join("still", spawn(sleeper)) == "ok" and len(pg.get_members("still")) == 1


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
    # As OTP does (see the baseline above), the groups end apart; this node, the one
    # that would bridge them (it connects every node it hears of), joins none again.
    me = Node.self()
    views = lambda: {**_elixir_lists(three)(), me: Node.list()}     # noqa: E731
    groups = _wait_for_partition(views, a, b)
    assert ex(c, ":global.sync()") == "ok" and Global.sync() is True
    time.sleep(1)
    assert _groups(views()) == groups
