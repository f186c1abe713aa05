"""Checks for exercise 11 · Names across the cluster (needs Elixir)."""
import time

from pydist import Atom, Global, Node, pg, receive, rpc, send, spawn
from pydist._exercises import ask, expect, started, unique

NODE = True
NEEDS = "elixir"
NEEDS_WHY = ("exercise 11 needs Elixir: apt-get install -y erlang-base elixir (Debian, Ubuntu) "
             "or brew install elixir (macOS)")
_peer = None

# An Elixir chat member: it answers {:chat, from, text} with {:heard, node(), text}.
MEMBER = """
member = spawn(fn ->
  loop = fn loop -> receive do {:chat, from, text} -> send(from, {:heard, node(), text}) end
                    loop.(loop) end
  loop.(loop)
end)
:ok = :pg.join(:room, member)
member
"""


def _elixir():
    """A real Elixir node with a pg scope and one member of :room (started once)."""
    global _peer
    from pydist import peer
    if _peer is None or _peer.process.poll() is not None:
        _peer = peer.start(unique("names"), elixir=True)
        _iex("{:ok, _} = :pg.start(:pg); :global.sync()")
        _iex(MEMBER)
        pg.start()
    return _peer.node


# Which names the Elixir node's own :global.whereis_name was called with, by any process
# there (an rpc from us included): a tracer records them until UNTRACE.
TRACE = """
tracer = spawn(fn ->
  loop = fn loop, seen ->
    receive do
      {:trace, _, :call, {:global, :whereis_name, [name]}} -> loop.(loop, [name | seen])
      {:seen, from} -> send(from, {:seen, seen}); loop.(loop, seen)
    end
  end
  loop.(loop, [])
end)
Process.register(tracer, :ex11_tracer)
:erlang.trace_pattern({:global, :whereis_name, 1}, true, [:global])
:erlang.trace(:all, true, [:call, {:tracer, tracer}])
"""
SEEN = """
ref = :erlang.trace_delivered(:all)
receive do {:trace_delivered, :all, ^ref} -> :ok end
send(:ex11_tracer, {:seen, self()})
receive do {:seen, seen} -> seen after 2000 -> [] end
"""
UNTRACE = """
:erlang.trace(:all, false, [:call])
:erlang.trace_pattern({:global, :whereis_name, 1}, false, [:global])
if tracer = Process.whereis(:ex11_tracer), do: Process.exit(tracer, :kill)
"""


def _iex(code: str):
    return rpc.call(_peer.node, "Elixir.Code", "eval_string", [code], timeout=10)[0]


def _sleeper():
    receive(match=lambda m: m == "stop")


def _member():
    while True:
        msg = receive()
        if type(msg) is tuple and len(msg) == 3 and msg[0] == "chat":
            send(msg[1], (Atom("heard"), Atom(Node.self()), msg[2]))


def task1(ex):
    node = _elixir()
    name = unique("greeter")
    pid = spawn(_sleeper)
    expect(ex.register_everywhere(name, pid), True, f"register_everywhere({name!r}, pid)")
    expect(_iex(f":global.whereis_name(:{name})"), pid,
           f"on the Elixir node, :global.whereis_name(:{name})")
    expect(ex.register_everywhere(name, spawn(_sleeper)), False,
           f"register_everywhere({name!r}, another_pid) when {name!r} is taken")
    send(pid, "stop")
    del node


def task2(ex):
    node = _elixir()
    name = unique("ex_named")
    theirs = _iex(f"pid = spawn(fn -> Process.sleep(:infinity) end); "
                  f":yes = :global.register_name(:{name}, pid); pid")
    called = f"where({name!r}, {node!r})"
    try:
        _iex(TRACE)
        got = ex.where(name, node)
        asked = _iex(SEEN)
    finally:
        _iex(UNTRACE)
    expect(got, theirs, called)
    if name not in asked:
        raise AssertionError(f"called {called}: the right pid, but {node} was never asked "
                             f"(its :global.whereis_name(:{name}) did not run). global keeps "
                             f"every node's table alike, so this node knows it too; the task "
                             f"is to ask the Elixir node: rpc.call(node, 'global', "
                             f"'whereis_name', [Atom(name)], timeout=...)")
    expect(ex.where(unique("nobody"), node), None, "where(a name nobody has, node)")
    expect(Global.whereis_name(name), theirs, f"Global.whereis_name({name!r}) here too")


def task3(ex):
    _elixir()
    started(ex.chat_member)                       # the stub's crash, said here, not as silence
    member = spawn(ex.chat_member)
    me = __import__("pydist").self()
    send(member, "noise")
    got = ask(member, (Atom("chat"), me, "hello"),
              called="chat_member(), sent 'noise' then (Atom('chat'), self(), 'hello')",
              match=lambda m: type(m) is tuple and m[:1] == ("heard",))
    expect(got, (Atom("heard"), Atom(Node.self()), "hello"),
           "the answer of chat_member to (Atom('chat'), self(), 'hello')")
    for i, what in ((0, "'heard'"), (1, "this node's name")):
        if type(got[i]) is not Atom:              # equal as str, yet a binary in Elixir
            raise AssertionError(
                f"called chat_member(), its answer {got!r} has {what} as a plain str: an "
                f"Elixir member matching {{:heard, node, text}} never sees it (a str travels "
                f"as a binary); send Atom(...) for an atom")
    pg.join("room", member)


def task4(ex):
    node = _elixir()
    if not pg.get_local_members("room"):         # task 3 not done: a member of ours
        pg.join("room", spawn(_member))
    deadline = time.monotonic() + 5               # the scopes meet as the node connects
    while not [p for p in pg.get_members("room") if p.node == node]:
        if time.monotonic() > deadline:
            raise AssertionError(f"no member of :room on {node} is seen here: pg's scopes "
                                 f"did not meet (is this node's scope running? pg.start())")
        time.sleep(0.05)
    try:
        got = ex.ask_room("room", "anyone?")
    except TimeoutError as exc:
        raise AssertionError(
            f"called ask_room('room', 'anyone?') with one Elixir and one Python member: "
            f"{exc}. The Elixir member answers {{:chat, from, text}} only: is the first "
            f"element Atom('chat')? A plain 'chat' reaches it as a binary") from None
    expect(got, sorted([node, Node.self()]),
           "ask_room('room', 'anyone?') with one Elixir and one Python member")


TASKS = [("register_everywhere gives a pid a global name", task1),
         ("where finds a global name from the Elixir node", task2),
         ("chat_member answers ('heard', node, text)", task3),
         ("ask_room asks every member of a pg group, Python and Elixir", task4)]
