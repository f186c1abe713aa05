"""GenServer (pydist.gen_server): OTP's call shapes between pydist processes, between
pydist nodes, and with real Elixir nodes (a Python server under an Elixir Supervisor)."""

from __future__ import annotations

import pytest
from conftest import HOST, unique
from test_beam import ex

from pydist import Atom, Node, Process, ProcessExit, peer, receive, self, send, spawn
from pydist.gen_server import GenServer


class Counter(GenServer):
    """The server of these tests: a number; "slow" answers after a while, "later"
    through GenServer.reply; with ``(n, trap, watcher)`` it traps exits and tells
    ``watcher`` how it was terminated."""

    def init(self, arg):
        if type(arg) is tuple and len(arg) == 3:
            n, trap, self.watcher = arg
            Process.flag("trap_exit", bool(trap))
        else:
            n, self.watcher = arg, None
        return ("ok", n)

    def handle_call(self, request, from_, n):
        if request == "get":
            return ("reply", n, n)
        if request == "slow":
            Process.sleep(0.5)
            return ("reply", "late", n)
        if request == "later":
            send(self_pid(), ("answer", from_))
            return ("noreply", n)
        if request == "crash":
            raise RuntimeError("asked to crash")
        return ("stop", "normal", "bye", n)

    def handle_cast(self, request, n):
        return ("noreply", n + request)

    def handle_info(self, msg, n):
        if type(msg) is tuple and msg[0] == "answer":
            GenServer.reply(msg[1], ("later", n))
        return ("noreply", n)

    def terminate(self, reason, n):
        if self.watcher is not None:
            send(self.watcher, ("terminated", reason, n))


def self_pid():
    return self()


def nothing_left() -> list:
    return Process.info(self(), "messages")[1]


# ---------------------------------------------------------------- on one node

def test_call_cast_and_a_reply_given_later():
    ok, pid = Counter.start(5)
    assert ok == "ok"
    assert GenServer.call(pid, "get") == 5
    assert GenServer.cast(pid, 3) == "ok"
    assert GenServer.call(pid, "get") == 8
    assert GenServer.call(pid, "later") == ("later", 8)
    assert GenServer.call(pid, "quit") == "bye"
    assert nothing_left() == []


def test_a_timeout_exits_the_caller_and_the_late_reply_is_dropped():
    ok, pid = Counter.start(1, name="slow_counter")
    with pytest.raises(ProcessExit, match="no reply within 0.1 s") as died:
        GenServer.call("slow_counter", "slow", timeout=0.1)
    assert died.value.reason[0] == "timeout"
    assert GenServer.call("slow_counter", "get") == 1       # after the late reply came
    assert nothing_left() == []
    GenServer.stop(pid)


def test_a_call_to_nobody_or_to_a_server_that_crashes_exits_with_its_reason():
    with pytest.raises(ProcessExit) as died:
        GenServer.call(spawn(lambda: None), "get")
    assert died.value.reason[0] == "noproc"
    with pytest.raises(ProcessExit) as died:     # Elixir: {:noproc, {GenServer, :call, ...}}
        GenServer.call("nobody_here", "get")
    assert died.value.reason[0] == "noproc", died.value
    assert nothing_left() == []
    _, pid = Counter.start(0)
    with pytest.raises(ProcessExit) as died:
        GenServer.call(pid, "crash")
    assert isinstance(died.value.reason[0], RuntimeError)
    assert nothing_left() == []


def test_a_call_to_a_malformed_node_name_says_so(node):
    with pytest.raises(ValueError, match="'ps' is not a node name"):   # not a nodedown
        GenServer.call(("stock", "ps"), "get")
    assert nothing_left() == []


def test_names_start_link_and_stop_with_terminate():
    me = self()
    ok, pid = Counter.start((7, True, me), name="named_counter")
    assert Counter.start(0, name="named_counter") == ("error", ("already_started", pid))
    assert GenServer.stop("named_counter", "shutdown") == "ok"
    assert receive(timeout=5) == ("terminated", "shutdown", 7)
    assert Process.whereis("named_counter") is None
    _, linked = Counter.start_link((1, False, me))     # stopped "normal": we live on
    GenServer.stop(linked)
    assert receive(timeout=5) == ("terminated", "normal", 1) and self() == me
    _, linked = Counter.start_link(2)                  # as in Elixir: a linked
    with pytest.raises(ProcessExit):                   # server's "shutdown" kills us
        GenServer.stop(linked, "shutdown")
    assert self() != me


def test_init_that_stops_or_raises_is_an_error_for_the_starter():
    class Refuses(GenServer):
        def init(self, arg):
            return ("stop", "no_thanks")
    assert Refuses.start() == ("error", "no_thanks")

    class Broken(GenServer):
        def init(self, arg):
            raise KeyError("missing")
    ok, why = Broken.start()
    assert ok == "error" and isinstance(why, KeyError)

    class Shapeless(GenServer):                   # OTP: {:error, {:bad_return_value, v}}
        def init(self, arg):
            return (":ok", arg)
    assert Shapeless.start(["nike"]) == ("error", ("bad_return_value", (":ok", ["nike"])))
    with pytest.raises(TypeError, match="GenServer subclass"):
        GenServer.start.__func__(int)


def test_a_callback_that_returns_a_wrong_shape_says_which_and_what_it_may_return():
    class Bare(GenServer):
        def handle_call(self, request, from_, state):
            return state                              # not ("reply", state, state)
    _, pid = Bare.start(["nike"])
    with pytest.raises(ProcessExit) as died:
        GenServer.call(pid, "status", timeout=2)
    why = died.value.reason[0]
    assert isinstance(why, ValueError), why
    assert str(why) == ("Bare.handle_call returned ['nike'] for 'status'; expected "
                        "('reply', reply, state), ('noreply', state) or "
                        "('stop', reason, reply, state)")
    assert nothing_left() == []


# ---------------------------------------------------------------- two pydist nodes

def test_calls_and_multi_call_between_pydist_nodes(node):
    with peer.start(unique("gs")) as b:
        from pydist import rpc
        ok, far = rpc.call(b.node, "test_gen_server.Counter", "start", [10, "far_counter"])
        Counter.start(1, name="far_counter")
        assert GenServer.call(("far_counter", b.node), "get") == 10
        GenServer.cast(far, 5)
        assert GenServer.call(far, "later") == ("later", 15)
        nobody = f"nobody@{HOST}"
        replies, bad = GenServer.multi_call([Node.self(), b.node, nobody],
                                            "far_counter", "get", timeout=5)
        assert sorted(replies) == sorted([(Node.self(), 1), (b.node, 15)])
        assert bad == [nobody]
        with pytest.raises(ProcessExit, match="no reply within"):
            GenServer.call(far, "slow", timeout=0.1)
        ref = Process.monitor(far)
        Process.exit(far, "kill")
        assert receive(timeout=5, match=lambda m: m[0] == "DOWN")[4] == "killed"
        del ref
        assert GenServer.call("far_counter", "get") == 1
        GenServer.stop("far_counter")
        assert nothing_left() == []


# ---------------------------------------------------------------- with Elixir

ECHO = """
defmodule Echo do
  use GenServer
  def init(n), do: {:ok, n}
  def handle_call(:get, _from, n), do: {:reply, n, n}
  def handle_call({:sleep, ms}, _from, n), do: (Process.sleep(ms); {:reply, :late, n})
  def handle_cast({:add, k}, n), do: {:noreply, n + k}
end
{:ok, _} = GenServer.start(Echo, 40, name: :echo)
:ok
"""


@pytest.fixture
def elixir(node):
    server = peer.start(unique("gx"), elixir=True)
    try:
        yield server.node
    finally:
        server.stop()


def test_python_calls_an_elixir_genserver_and_a_late_reply_is_dropped(elixir):
    assert ex(elixir, ECHO) == "ok"
    get = Atom("get")                           # Elixir's :get (a str would be "get")
    assert GenServer.call(("echo", elixir), get) == 40
    GenServer.cast(("echo", elixir), (Atom("add"), 2))
    assert GenServer.call(("echo", elixir), get) == 42
    with pytest.raises(ProcessExit, match="no reply within"):
        GenServer.call(("echo", elixir), (Atom("sleep"), 300), timeout=0.05)
    assert GenServer.call(("echo", elixir), get) == 42        # the late reply came first
    _, mine = Counter.start(1, name="echo")
    replies, bad = GenServer.multi_call([elixir, Node.self()], "echo", get)
    assert sorted(replies) == sorted([(elixir, 42), (Node.self(), 1)]) and bad == []
    GenServer.stop(mine)
    assert nothing_left() == []


def test_elixir_calls_casts_and_multi_calls_a_python_genserver(elixir):
    _, pid = Counter.start(3, name="py_counter")
    me = Node.self()
    got = ex(elixir, f"""
        a = GenServer.call({{:py_counter, :"{me}"}}, :get)
        :ok = GenServer.cast(pid, 4)
        b = GenServer.call(pid, :later)
        {{replies, bad}} = GenServer.multi_call([:"{me}"], :py_counter, :get)
        state = :sys.get_state(pid)
        {{:status, ^pid, {{:module, :gen_server}}, _}} = :sys.get_status(pid)
        late = try do
          GenServer.call(pid, :slow, 100)
        catch :exit, {{:timeout, _}} -> :timed_out end
        Process.sleep(600)
        {{:messages, left}} = Process.info(self(), :messages)
        {{a, b, replies, bad, state, late, left}}""", pid=pid)
    assert got == (3, ("later", 7), [(me, 7)], [], 7, "timed_out", [])
    GenServer.stop(pid)


def test_an_elixir_supervisor_starts_restarts_and_terminates_a_python_child(elixir):
    me = Node.self()
    got = ex(elixir, f"""
        spec = %{{id: :py, start: {{:rpc, :call, [:"{me}", :"test_gen_server.Counter",
                                                  :start_link, [5]]}}, shutdown: :brutal_kill}}
        {{:ok, sup}} = Supervisor.start_link([spec], strategy: :one_for_one)
        [{{:py, first, :worker, _}}] = Supervisor.which_children(sup)
        five = GenServer.call(first, :get)
        ref = Process.monitor(first)
        Process.exit(first, :kill)
        why = receive do {{:DOWN, ^ref, _, _, why}} -> why after 5000 -> :no_down end
        again = Enum.find_value(1..100, fn _ ->
          case Supervisor.which_children(sup) do
            [{{:py, pid, _, _}}] when is_pid(pid) and pid != first -> pid
            _ -> Process.sleep(20); nil
          end
        end)
        t = System.monotonic_time(:microsecond)
        :ok = Supervisor.terminate_child(sup, :py)
        took = System.monotonic_time(:microsecond) - t
        alive = :rpc.call(:"{me}", :erlang, :is_process_alive, [again])
        Supervisor.stop(sup)
        {{five, why, node(again), took, alive}}""", timeout=20)
    five, why, where, took, alive = got
    assert (five, why, where, alive) == (5, "killed", me, False)
    assert took <= 50_000, f"terminate_child (brutal_kill) took {took} µs"


def test_a_trapping_python_child_runs_terminate_within_the_shutdown_time(elixir):
    me = Node.self()
    got = ex(elixir, f"""
        spec = %{{id: :py, start: {{:rpc, :call, [:"{me}", :"test_gen_server.Counter",
                                      :start_link, [{{9, true, watcher}}]]}}, shutdown: 1000}}
        {{:ok, sup}} = Supervisor.start_link([spec], strategy: :one_for_one)
        t = System.monotonic_time(:millisecond)
        :ok = Supervisor.terminate_child(sup, :py)
        took = System.monotonic_time(:millisecond) - t
        Supervisor.stop(sup)
        took""", watcher=self(), timeout=20)
    assert receive(timeout=5) == ("terminated", "shutdown", 9)
    assert got < 1000


def test_kill_from_elixir_is_down_killed_and_frees_the_name(elixir):
    pid = spawn(Process.sleep, 60)
    Process.register(pid, "sleeper")
    got = ex(elixir, """
        ref = Process.monitor(pid)
        t = System.monotonic_time(:microsecond)
        Process.exit(pid, :kill)
        receive do {:DOWN, ^ref, _, _, why} ->
          {why, System.monotonic_time(:microsecond) - t}
        after 5000 -> :no_down end""", pid=pid)
    assert got[0] == "killed" and got[1] <= 50_000, got
    assert Process.whereis("sleeper") is None


def test_a_linked_elixir_crash_kills_a_python_process_that_does_not_trap(elixir):
    def waiter():
        receive(timeout=30)
    pid = spawn(waiter)
    ref = Process.monitor(pid)
    ex(elixir, """spawn(fn -> Process.link(pid); raise "boom" end); :ok""", pid=pid)
    why = receive(timeout=5, match=lambda m: m[0] == "DOWN" and m[1] == ref)[4]
    assert why[0]["__struct__"] == "Elixir.RuntimeError", why    # Elixir's exception
    assert why[0]["message"] == "boom"


def test_what_beam_tools_ask_a_python_node(elixir):
    me = Node.self()
    got = ex(elixir, f"""
        n = :"{me}"
        {{:rpc.call(n, :erlang, :node, []), is_list(:rpc.call(n, :erlang, :memory, [])),
          is_integer(:rpc.call(n, :erlang, :system_info, [:process_count])),
          :rpc.call(n, :erlang, :is_process_alive, [pid]),
          List.keyfind(:rpc.call(n, :erlang, :process_info, [pid]), :registered_name, 0),
          :rpc.call(n, :os, :getpid, []),
          elem(:rpc.call(n, :erlang, :statistics, [:wall_clock]), 0) >= 0,
          :rpc.call(n, :erlang, :memory, [:processes]),
          elem(:rpc.call(n, :erlang, :system_info, [:no_such_item]), 0)}}""",
              pid=self())
    assert got == (me, True, True, True, ("registered_name", []),
                   [ord(c) for c in str(__import__("os").getpid())], True, 0, "badrpc")
