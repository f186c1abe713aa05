"""Checks for exercise 10 · Links and supervisors."""
import sys
import threading
import time

from pydist import Process, ProcessExit, pid_to_list, receive, self, send, spawn
from pydist._exercises import EXITS, calls, expect, started
from pydist.gen_server import GenServer

NODE = True


def _left() -> list:
    return Process.info(self(), "messages")[1]


def _raises(message):
    raise ValueError(message)


def _returns():
    return 42


def task1(ex):
    started(ex.exit_reason)
    me = self()
    called = "exit_reason(_raises, 'boom'), fun raising ValueError('boom')"
    try:
        got = ex.exit_reason(_raises, "boom")
    except ProcessExit as exc:
        raise AssertionError(
            f"called {called}: your own process died with the linked one (of "
            f"{exc.reason!r}): it does not trap exits. Call Process.flag('trap_exit', True) "
            f"before spawn_link, and the exit comes as a message instead") from None
    except TimeoutError:
        raise AssertionError(
            f"called {called}: no ('EXIT', pid, reason) message came, and your receive "
            f"gave up. It comes only to a process linked to the one that ended: "
            f"spawn_link(fun, *args), not spawn") from None
    if isinstance(got, tuple) and got[:1] == ("EXIT",):
        raise AssertionError(f"called {called}, expected the reason, got the whole message "
                             f"{got!r}: return its third element")
    if not (isinstance(got, ValueError) and str(got) == "boom"):
        raise AssertionError(f"called {called}, expected ValueError('boom') (the exception "
                             f"itself is the reason), got {got!r}")
    expect(ex.exit_reason(_returns), "normal", "exit_reason(_returns), fun returning 42")
    expect(self(), me, "self() after exit_reason: this process's pid (it must live on)")
    trapping = Process.flag("trap_exit", False)
    if trapping:
        raise AssertionError("called exit_reason(...) in a process that did not trap exits: "
                             "afterwards it traps them. Put the flag back as it was: "
                             "was = Process.flag('trap_exit', True) ... "
                             "Process.flag('trap_exit', was)")
    Process.flag("trap_exit", True)
    try:
        ex.exit_reason(_returns)
        if not Process.flag("trap_exit", True):
            raise AssertionError("called exit_reason(...) in a process that traps exits: "
                                 "afterwards it no longer does. Put the flag back as it "
                                 "was (Process.flag returns the old value)")
    finally:
        Process.flag("trap_exit", False)
    expect(_left(), [], "exit_reason twice: messages left in the caller's mailbox")


def _stubborn(parent, seen):
    Process.flag("trap_exit", True)
    send(parent, "trapping")
    while True:
        seen.append(receive())


def task2(ex):
    started(ex.kill_for_good)
    seen: list = []
    pid = spawn(_stubborn, self(), seen)
    receive(timeout=5, match=lambda m: m == "trapping")
    Process.register(pid, "stubborn_t")
    called = "kill_for_good('stubborn_t'), a process that traps exits"
    late = threading.Timer(1.0, _end, [pid])         # a wrong reason: it lives on; end it
    late.start()                                     # so that the learner's wait ends
    try:
        got = ex.kill_for_good("stubborn_t")
    except TimeoutError:
        got = TimeoutError
    finally:
        late.cancel()
    if seen:
        raise AssertionError(
            f"called {called}: it got {seen[0]!r} as a message and lived on: it traps "
            f"exits, so that signal cannot end it. One reason cannot be trapped: 'kill'")
    if got is TimeoutError or Process.alive(pid):
        _end(pid)
        raise AssertionError(f"called {called}: it was still alive (no DOWN came); "
                             f"Process.exit(pid, 'kill') ends it whatever it does")
    expect(got, "killed", called)
    if calls(ex.kill_for_good, "monitor", "link", "spawn_link") is False:
        raise AssertionError(f"called {called}: it returned 'killed', and its code asks no "
                             f"monitor: is that the reason you expect rather than the one "
                             f"reported? Ask Process.monitor(name) before the kill, and "
                             f"return the reason in its ('DOWN', ref, ...) message")
    expect(Process.whereis("stubborn_t"), None, "Process.whereis('stubborn_t') afterwards")
    left = _left()
    if left:
        raise AssertionError(f"called {called}: it left {left!r} in the caller's mailbox; "
                             f"take the DOWN message with receive(match=...)")


def _end(pid):
    if Process.alive(pid):
        Process.exit(pid, "kill")


def task3(ex):
    started(ex.StockServer.handle_call)
    started(ex.StockServer.init)
    started_as = ex.StockServer.start(["nike"])
    if started_as[0] != "ok":
        why = started_as[1] if len(started_as) == 2 else None
        returned = why[1] if type(why) is tuple and why[:1] == ("bad_return_value",) else None
        habit = (" (':ok' is Elixir's spelling: the atom :ok is the string 'ok' here)"
                 if type(returned) is tuple and returned[:1] == (":ok",) else "")
        raise AssertionError(f"called StockServer.start(['nike']), expected ('ok', pid), got "
                             f"{started_as!r}: init(stock) returns ('ok', stock){habit}")
    pid = started_as[1]
    try:
        expect(GenServer.call(pid, "status", timeout=2), ["nike"],
               "GenServer.call(stock, 'status')")
        expect(GenServer.call(pid, ("add", "adidas"), timeout=2), ["adidas", "nike"],
               "GenServer.call(stock, ('add', 'adidas'))")
        expect(GenServer.call(pid, ("take", "nike"), timeout=2), ["adidas"],
               "GenServer.call(stock, ('take', 'nike')) on ['adidas', 'nike']")
        expect(GenServer.call(pid, "status", timeout=2), ["adidas"],
               "GenServer.call(stock, 'status') after the take: the new state")
    except ProcessExit as exc:
        raise AssertionError(_call_failed(exc)) from None
    called = "GenServer.call(stock, ('take', 'puma')) on ['adidas']"
    try:
        got = GenServer.call(pid, ("take", "puma"), timeout=2)
    except ProcessExit as exc:
        why = exc.reason[0] if isinstance(exc.reason, tuple) else exc.reason
        if not (isinstance(why, ValueError) and str(why) == "no puma in stock"):
            raise AssertionError(f"called {called}, expected the server to crash with "
                                 f"ValueError('no puma in stock'), got {why!r}") from None
    else:
        GenServer.stop(pid)
        raise AssertionError(f"called {called}, expected the server to crash with "
                             f"ValueError('no puma in stock'), got the reply {got!r}")
    expect(_left(), [], "the calls: messages left in the caller's mailbox")


def _call_failed(exc: ProcessExit) -> str:
    why = exc.reason[0] if isinstance(exc.reason, tuple) else exc.reason
    if why == "timeout":
        return ("a GenServer.call to your StockServer got no reply within 2 s: does "
                "handle_call return ('reply', reply, new_state) for every request?")
    if isinstance(why, BaseException):
        why = f"{type(why).__name__}: {why}"
    return f"a GenServer.call to your StockServer failed: the server crashed with {why}"


class _Stock(GenServer):
    """The checks' own stock server for task 4 (task 3 is checked on its own)."""

    def handle_call(self, request, from_, stock):
        if request == "status":
            return ("reply", stock, stock)
        raise ValueError(f"no {request[1]} in stock")


def _new(name: str, old, timeout: float = 2.0):
    deadline = time.monotonic() + timeout
    while Process.whereis(name) in (None, old) and time.monotonic() < deadline:
        Process.sleep(0.01)
    return Process.whereis(name)


def task4(ex):
    started(ex.supervise)
    result: list = []
    sup = spawn(lambda: result.append(ex.supervise(_Stock, "stock_t", ["nike"], 2)))
    ref = Process.monitor(sup)
    called = "supervise(StockServer, 'stock_t', ['nike'], 2)"
    try:
        first = _new("stock_t", None)
        if first is None:
            _no_server(sup, result, called)
        try:
            GenServer.call("stock_t", ("take", "puma"), timeout=2)
        except ProcessExit:
            pass                                       # it crashed, as asked
        second = _new("stock_t", first)
        if second == first or second is None:
            _not_restarted(sup, called, "crashed with ValueError('no puma in stock')")
        expect(GenServer.call("stock_t", "status", timeout=2), ["nike"],
               f"{called}, then GenServer.call('stock_t', 'status') on the restarted server")
        Process.exit(second, "kill")
        third = _new("stock_t", second)
        if third == second or third is None:
            _not_restarted(sup, called, "was killed ('kill')")
        try:
            down = receive(timeout=2, match=lambda m: m[:2] == ("DOWN", ref))
        except TimeoutError:
            raise AssertionError(f"called {called}: after its 2 restarts, supervise did not "
                                 f"return within 2 s; count the restarts and return once "
                                 f"the last new server is started") from None
        expect(result, [2], f"{called}: its return value after two restarts")
        expect(down[4], "normal", f"{called}: how supervise ended")
        expect(Process.alive(third), True, f"{called}: the last server, after supervise "
                                           f"returned, is alive")
        GenServer.stop(third)
    finally:
        _end(sup)
        Process.demonitor(ref)
        while _left():
            receive(timeout=0)


def _no_server(sup, result, called):
    ended = EXITS.get(sup.num)
    if isinstance(ended, BaseException):
        raise AssertionError(f"called {called}: supervise crashed with "
                             f"{type(ended).__name__}: {ended}") from None
    if ended is not None:
        raise AssertionError(f"called {called}: supervise ended ({ended!r}, returning "
                             f"{result[0] if result else None!r}) without a server "
                             f"registered as 'stock_t': server.start_link(initial, "
                             f"name=name)")
    raise AssertionError(f"called {called}, expected a server registered as 'stock_t' "
                         f"within 2 s, found none: does supervise call "
                         f"server.start_link(initial, name=name)?")


def _not_restarted(sup, called, how):
    ended = EXITS.get(sup.num)
    if ended is not None and ended != "normal":
        raise AssertionError(
            f"called {called}: when its server {how}, supervise died with it (of "
            f"{ended!r}): a supervisor must trap exits, Process.flag('trap_exit', True), "
            f"before it starts the server") from None
    raise AssertionError(
        f"called {called}: its server {how}, and no new one was registered as 'stock_t' "
        f"within 2 s. Is the server linked to supervise (server.start_link, not start), "
        f"and does supervise wait for its ('EXIT', pid, reason) and start it again?")


def _thread_of(pid):
    """The thread that runs process ``pid`` (pydist names it after the pid)."""
    name = f"pydist-{pid_to_list(pid)}"
    return next((t for t in threading.enumerate() if t.name == name), None)


def _line_in_exercise(thread) -> str:
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if "ex10_" in frame.f_code.co_filename:
            name = frame.f_code.co_filename.replace("\\", "/").split("/")[-1]
            return f" (line {frame.f_lineno} of {name})"
        frame = frame.f_back
    return ""


def task5(ex):
    started(ex.ticker)
    me = self()
    called = "ticker(self(), 0.05)"
    pid = spawn(ex.ticker, me, 0.05)
    ticks: list = []
    try:
        while len(ticks) < 3:
            ticks.append(receive(timeout=2, match=lambda m: isinstance(m, tuple)
                                 and m[:1] == ("tick",)))
    except TimeoutError:
        raise AssertionError(_few_ticks(called, ticks, pid)) from None
    finally:
        _end(pid)
    expect(ticks, [("tick", 1), ("tick", 2), ("tick", 3)], f"{called}: its first three "
                                                           f"messages")
    while _left():
        receive(timeout=0)
    slow = spawn(ex.ticker, me, 3)
    Process.sleep(0.2)                               # inside its 3 s wait by now
    thread = _thread_of(slow)
    Process.exit(slow, "kill")
    if thread is None:
        return                                       # already ended: nothing to wait for
    thread.join(0.5)
    if thread.is_alive():
        raise AssertionError(
            f"called ticker(self(), 3) and killed it during its wait: its process is dead, "
            f"but its thread still waits{_line_in_exercise(thread)}. time.sleep is a C call "
            f"that no kill can interrupt; Process.sleep(every) is cut short by one")


TASKS = [("exit_reason traps the exit of a linked process", task1),
         ("kill_for_good ends a process that traps exits", task2),
         ("StockServer answers status, add and take, and crashes on a missing product", task3),
         ("supervise restarts a crashed or killed server", task4),
         ("ticker waits so that a kill stops it at once", task5)]


def _few_ticks(called: str, ticks: list, pid) -> str:
    """Why fewer than 3 ticks came in 2 s, from what did come and how the ticker ended."""
    got = f"got {len(ticks)} ('tick', n) message{'s' if len(ticks) != 1 else ''} in 2 s"
    others = _left()
    while _left():
        receive(timeout=0)
    ended = EXITS.get(pid.num)
    if isinstance(ended, BaseException):
        return (f"called {called}: ticker crashed with {type(ended).__name__}: {ended} "
                f"(after {len(ticks)} ticks); to wait between ticks, Process.sleep(every)")
    if others:
        return (f"called {called}, expected ('tick', 1), ('tick', 2)... {got}, and "
                f"{others[:3]!r} instead: each tick is the tuple ('tick', n), with 'tick' "
                f"a plain string (Elixir's :tick)")
    if ended is not None:
        return (f"called {called}: ticker returned after {len(ticks)} tick(s): it must "
                f"go on until it is killed (a while True loop)")
    return (f"called {called}, expected one ('tick', n) every 0.05 s, {got}: pydist counts "
            f"seconds (Process.sleep(0.05), where Elixir says Process.sleep(50))")
