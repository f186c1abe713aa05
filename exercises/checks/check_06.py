"""Checks for exercise 06 · The stock central."""
from pydist import peer, rpc, self, send
from pydist._exercises import ask, expect, unique

NODE = True
NIKE = {"name": "nike", "qty": 30}


def _stock_server(stock):
    from pydist import receive, send
    while True:
        msg = receive()
        if msg[0] == "status":
            send(msg[1], stock)


def _start_here(name, fun, *args):
    from pydist import Process, spawn
    Process.register(spawn(fun, *args), name)


def task1(ex):
    server, store = peer.start(unique("server")), peer.start(unique("store"))
    try:
        rpc.call(server.node, _start_here, ["server", _stock_server, [NIKE]])
        rpc.call(store.node, _start_here, ["pos", ex.pos_ask, server.node])
        for product, answer in [(NIKE, NIKE), ("puma", "There is no Product puma")]:
            called = f"send(('pos', {store.node!r}), ('ask', me, {product!r}))"
            got = ask(("pos", store.node), ("ask", self(), product), called=called, timeout=3)
            expect(got, ("print", answer), called)
    finally:
        store.stop()
        server.stop()


def task2(ex):
    send(self(), "noise")
    send(self(), ("print", "hello"))
    expect(ex.show_msg(1), "hello", "show_msg() with 'noise' and ('print', 'hello') waiting")
    from pydist import receive
    expect(receive(timeout=1), "noise", "show_msg(), then looked for the 'noise' it should leave")
    try:                                     # no answer: it must give up, not wait for ever
        ex.show_msg(0.3)
    except TimeoutError:
        return
    raise AssertionError("called show_msg(0.3) with no ('print', ...) coming, expected "
                         "TimeoutError after 0.3 s, got an answer")


def task3(ex):
    server, store = peer.start(unique("server")), peer.start(unique("store"))
    try:
        rpc.call(server.node, _start_here, ["server", _stock_server, [NIKE]])
        rpc.call(store.node, _start_here, ["pos", _reference_pos, server.node])
        expect(ex.ask_store(store.node, "puma"), "There is no Product puma",
               "ask_store(store, 'puma')")
        expect(ex.ask_store(store.node, NIKE), NIKE, "ask_store(store, nike)")
    finally:
        store.stop()
        server.stop()


def _reference_pos(stock_address):
    from pydist import receive, self, send
    while True:
        _, sender, product = receive()
        send(("server", stock_address), ("status", self()))
        products = receive(timeout=5)
        send(sender, ("print", product if product in products
                      else f"There is no Product {product}"))


TASKS = [("pos_ask serves customers, asking the server", task1),
         ("show_msg takes the ('print', msg) message", task2),
         ("ask_store asks end to end", task3)]
