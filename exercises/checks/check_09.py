"""Checks for exercise 09 · Python meets the BEAM (needs Elixir)."""
import threading
from pathlib import Path

from pydist import Atom, BadRpc, rpc, self
from pydist._exercises import expect, unique

NODE = True
NEEDS = "elixir"
NEEDS_WHY = ("exercise 09 needs Elixir: apt-get install -y erlang-base elixir (Debian, Ubuntu) "
             "or brew install elixir (macOS)")
_peer = None
ELIXIR = Path(__file__).resolve().parents[2] / "notebooks" / "product_stock.ex"


def _server():
    """A real Elixir node with ProductStock registered as :server (started once)."""
    global _peer
    from pydist import peer
    if _peer is None or _peer.process.poll() is not None:
        _peer = peer.start(unique("stock"), elixir=True, load=str(ELIXIR))
        pid = rpc.call(_peer.node, "erlang", "spawn",
                       [Atom("Elixir.ProductStock"), Atom("handle_stock"), [[]]])
        rpc.call(_peer.node, "erlang", "register", [Atom("server"), pid])
    return _peer.node


def task1(ex):
    me = self()
    got = ex.status_request(me)
    expect(got, (Atom("status"), me), "status_request(self())")
    if type(got[0]) is not Atom:
        raise AssertionError(f"status_request(self()) starts with {got[0]!r}, a Python str: it "
                             f"arrives as the Elixir string \"status\", not the atom :status. "
                             f"Use Atom(\"status\")")


def _left_in_servers_mailbox(server):
    """The messages :server over there has not taken: Elixir's receive leaves a message
    that no clause matches in the mailbox."""
    pid = rpc.call(server, "erlang", "whereis", [Atom("server")], timeout=5)
    info = rpc.call(server, "erlang", "process_info", [pid, Atom("messages")], timeout=5)
    return info[1] if isinstance(info, tuple) else []


def task2(ex):
    server = _server()
    called = f"add_product({server!r}, {{'name': 'nike', 'qty': 30}})"
    try:
        first = ex.add_product(server, {"name": "nike", "qty": 30})
    except TimeoutError:
        for message in _left_in_servers_mailbox(server):
            if isinstance(message, tuple) and message and type(message[0]) is not Atom:
                raise AssertionError(
                    f"called {called}, expected the new stock, got no answer: the Elixir "
                    f"server got {message!r} and left it in its mailbox. Its first element "
                    f"{message[0]!r} is a Python str, which arrives as the Elixir string "
                    f"\"{message[0]}\", not the atom :{message[0]}; ProductStock's clauses "
                    f"match atoms. Use Atom({str(message[0])!r})") from None
        raise
    expect(first[:1], [{"name": "nike", "qty": 30}], f"{called}[:1]")
    second = ex.add_product(server, {"name": "adidas", "qty": 35})
    expect(second[:2], [{"name": "adidas", "qty": 35}, {"name": "nike", "qty": 30}],
           f"add_product({server!r}, {{'name': 'adidas', 'qty': 35}})[:2]")


def task3(ex):
    server = _server()
    called = f"elixir_upcase({server!r}, 'héllo')"
    try:
        got = ex.elixir_upcase(server, "héllo")
    except BadRpc as exc:
        if "undef" in str(exc) and "Elixir.String" not in str(exc):
            raise AssertionError(
                f"called {called}, expected 'HÉLLO', got BadRpc: {exc}. For Erlang (and rpc) "
                f"the Elixir module String is the atom 'Elixir.String': the name String alone "
                f"is an Erlang module that does not exist. Call rpc.call(node, "
                f"\"Elixir.String\", \"upcase\", [text], timeout=5)") from None
        raise
    expect(got, "HÉLLO", called)


def task4(ex):
    server = _server()
    pid = rpc.call(server, "erlang", "spawn", [Atom("timer"), Atom("sleep"), [10_000]])
    threading.Timer(0.3, rpc.call, [server, "erlang", "exit", [pid, Atom("kill")]]).start()
    expect(ex.watch(pid), "killed", "watch(pid) after Process.exit(pid, :kill) over there")


TASKS = [("status_request builds {:status, from} with an atom", task1),
         ("add_product asks the Elixir ProductStock and takes its answer", task2),
         ("elixir_upcase calls Elixir's String.upcase by rpc", task3),
         ("watch monitors an Elixir process and returns its exit reason", task4)]
