"""Checks for exercise 05 · Cross-process replies."""
from pydist import Node, peer, pid_to_list, rpc, self, send, spawn
from pydist._exercises import ask, expect, unique

NODE = True
NIKE = {"name": "nike", "qty": 30}


def task1(ex):
    me = self()
    expect(ex.log_line(me, "add"), f"{pid_to_list(me)} added a new item on stock",
           "log_line(self(), 'add')")
    expect(ex.log_line(me, "status"), f"{pid_to_list(me)} checked the stock",
           "log_line(self(), 'status')")


def task2(ex):
    pid = spawn(ex.handle_stock, [])
    expect(ask(pid, ("add", self(), NIKE), called="handle_stock([]) then ('add', me, nike)"),
           [NIKE], "handle_stock([]) then ('add', me, nike)")
    expect(ask(pid, ("status", self()), called="then ('status', me)"), ("show", [NIKE]),
           "then ('status', me)")


def task3(ex):
    def stock():
        from pydist import receive
        while True:
            msg = receive()
            send(msg[1], "noise")
            send(msg[1], ("show", [NIKE]))
    pid = spawn(stock)
    called = "ask_status(a stock that first sends 'noise', then ('show', [nike]))"
    got = ex.ask_status(pid)
    from pydist import receive
    try:
        left = receive(timeout=1, match=lambda m: m == "noise")
    except TimeoutError:
        left = None
    if left is None and got != [NIKE]:
        raise AssertionError(f"called {called}, expected [nike], got {got!r}: ask_status took "
                             f"the first message in the mailbox, 'noise', instead of the "
                             f"('show', stock) answer. Take only that one: "
                             f"receive(timeout=..., match=lambda m: ...)")
    expect(got, [NIKE], called)
    if left is None:
        raise AssertionError(f"called {called}: it returned the right stock but took 'noise' out "
                             f"of the mailbox; leave what is not the answer there: "
                             f"receive(timeout=..., match=...)")


def task4(ex):
    expect(ex.node_number(self()), 0, "node_number(self())")
    with peer.start(unique("other")) as other:
        remote = rpc.call(other.node, self, [])
        expected = int(pid_to_list(remote).strip("<>").split(".")[0])
        expect(ex.node_number(remote), expected, f"node_number({remote!r})")
    assert Node.alive()


TASKS = [("log_line writes the article's log text", task1),
         ("handle_stock answers every caller", task2),
         ("ask_status picks the ('show', ...) answer", task3),
         ("node_number reads a pid's first number", task4)]
