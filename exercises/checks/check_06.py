"""Checks for exercise 06 · The stock central."""
import re
import time

from pydist import peer, receive, rpc, self, send, spawn
from pydist._exercises import ask, expect, started, unique

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
    started(ex.pos_ask)                  # not its crash on the store node, far from here
    server, store = peer.start(unique("server")), peer.start(unique("store"))
    try:
        rpc.call(server.node, _start_here, ["server", _stock_server, [NIKE]])
        rpc.call(store.node, _start_here, ["pos", ex.pos_ask, server.node])
        for product, answer in [(NIKE, NIKE), ("puma", "There is no Product puma")]:
            called = f"send(('pos', {store.node!r}), ('ask', me, {product!r}))"
            got = ask(("pos", store.node), ("ask", self(), product), called=called, timeout=3)
            expect(got, ("print", answer), called)
        _two_customers(ex, server.node, store.node)
    finally:
        store.stop()
        server.stop()


def _is_print(m):
    return isinstance(m, tuple) and len(m) == 2 and m[0] == "print"


def _two_customers(ex, server, store):
    """Two questions already wait in pos's mailbox when it starts: the second must not be
    taken as the stock the first one's answer needs."""
    rpc.call(store, _start_here, ["busy_pos", _opens_later, ex.pos_ask, server])
    busy = ("busy_pos", store)
    send(busy, ("ask", self(), NIKE))
    _wait_queued(store, "busy_pos", 1)
    spawn(_second_customer, busy, "puma", self())
    _wait_queued(store, "busy_pos", 2)
    called = (f"two customers at once: ('ask', me, {NIKE!r}) and another customer's "
              f"('ask', them, 'puma') both waiting in pos's mailbox when it started")
    got = ask(busy, "open", called=called, timeout=3, match=_is_print)
    if got == ("print", f"There is no Product {NIKE}"):
        raise AssertionError(
            f"{called}: nike is in stock, but pos answered me {got!r}. While it waited for the "
            f"stock, it took the other customer's question as the stock. Wait for the stock "
            f"only: receive(timeout=..., match=...) that takes a list (Notebook 06, section "
            f"“Two customers at once”)")
    expect(got, ("print", NIKE), called)
    other = receive(timeout=3, match=lambda m: isinstance(m, tuple) and m[0] == "customer 2")[1]
    expect(other, ("print", "There is no Product puma"),
           called + "; the other customer's answer (a question taken as the stock is lost)")


def _opens_later(loop, *args):
    from pydist import receive
    receive(match=lambda m: m == "open")       # questions queue up until then
    loop(*args)


def _queued(name):
    from pydist import Process
    return Process.info(Process.whereis(name), "message_queue_len")[1]


def _wait_queued(node, name, n, timeout=3.0):
    deadline = time.monotonic() + timeout
    while rpc.call(node, _queued, [name]) < n and time.monotonic() < deadline:
        time.sleep(0.01)


def _second_customer(pos, product, report_to):
    send(pos, ("ask", self(), product))
    try:
        answer = receive(timeout=3, match=_is_print)
    except TimeoutError:
        answer = "nothing within 3 s"
    send(report_to, ("customer 2", answer))


def task2(ex):
    send(self(), "noise")
    send(self(), ("print", "hello"))
    called = "show_msg() with 'noise' and ('print', 'hello') waiting"
    got = ex.show_msg(1)
    try:
        left = receive(timeout=1, match=lambda m: m == "noise")
    except TimeoutError:
        left = None
    if left is None:
        raise AssertionError(f"called {called}, expected 'hello', got {got!r}: show_msg took "
                             f"'noise', the first message in the mailbox, which is not a "
                             f"('print', msg). Take only those: receive(timeout=..., "
                             f"match=lambda m: ...)")
    expect(got, "hello", called)
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
        rpc.call(store.node, _start_here, ["pos", _reference_pos, server.node, self()])
        for product, answer in [("puma", "There is no Product puma"), (NIKE, NIKE)]:
            called = f"ask_store(store, {product!r})"
            try:
                got = ex.ask_store(store.node, product)
            except TimeoutError:
                _asked_wrong(called)
                raise
            if got != answer:
                _asked_wrong(called)
            expect(got, answer, called)
    finally:
        store.stop()
        server.stop()


def _asked_wrong(called):
    """Raise what pos was sent, if it was not a question it can answer."""
    try:
        _, got = receive(timeout=0.5, match=lambda m: isinstance(m, tuple) and len(m) == 2
                         and m[0] == "pos got")
    except TimeoutError:
        return
    got = re.sub(r" at 0x[0-9a-f]+>", ">", got)
    why = "; the sender is self (the function): call it, self()" if "<function self" in got \
        else ""
    raise AssertionError(f"called {called}, expected pos to get ('ask', your pid, product), "
                         f"it got {got}{why}") from None


def _reference_pos(stock_address, report_to):
    from pydist import Pid, receive, self, send
    while True:
        question = receive()
        if not (isinstance(question, tuple) and len(question) == 3
                and isinstance(question[1], Pid)):
            send(report_to, ("pos got", repr(question)))    # not a crash far away
            continue
        _, sender, product = question
        send(("server", stock_address), ("status", self()))
        products = receive(timeout=5, match=lambda m: isinstance(m, list))
        send(sender, ("print", product if product in products
                      else f"There is no Product {product}"))


TASKS = [("pos_ask serves customers, asking the server", task1),
         ("show_msg takes the ('print', msg) message", task2),
         ("ask_store asks end to end", task3)]
