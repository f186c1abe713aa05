"""Every notebook's "Try it" as a learner meets it, in one real kernel per notebook
(jupyter_client): the notebook runs up to its Try it; then wrong answers (a typo, a wrong
shape, a function not called, a question that kills the helper process) go in, one after
the other, and the check must name the cause, leave no message behind in the notebook's
mailbox and not change the connections; then the right answer passes, and every later cell
still prints what the notebook has stored (after notebooks/sanitize.cfg).
"""

import json
import re
import shutil
from dataclasses import dataclass, field

import pytest
from conftest import ELIXIR_NOTEBOOKS, ROOT, STOP_NODE, kernel_in
from test_notebook_rerun import _cells, _run

jupyter_client = pytest.importorskip("jupyter_client")


@dataclass
class Case:
    answer: str | None            # replaces the `...` of the Try it cell; None: run `rerun` only
    says: list[str]               # what the check's output must contain
    rerun: list[str] = field(default_factory=list)    # ids of cells to run first (a restart)
    setup: str = ""               # code to run first (a helper node that dies)


RIGHT = "✓"
MEASURE = 'lambda: (Node.self(), (disk() / "report.csv").stat().st_size)'     # 07's function
OTP = 'rpc.call(SERVER, "erlang", "system_info", [Atom("otp_release")])'     # 09's charlist
MEMBERS = 'rpc.call(ONE, "pg", "get_members", '                               # 11's question
CASES = {
    "01": [Case('Node.self().split("@")', ["whole split, a list", "[1]"]),
           Case("Node.slef()", ["stopped with AttributeError", "run the Try it cell again"]),
           Case("Node.self", ["a function itself", "call it"]),
           Case('Node.self().split("@")[1]', [RIGHT])],
    "02": [Case("Node.list", ["the function itself", "call it"]),
           Case("Node.list() + [c.node]", ["is in your list", "dropped that connection"]),
           Case("[b.node]", ["dropped us too", "overlapping partitions"]),
           Case("Node.list()", [RIGHT, "we know []", "b dropped us too"]),
           Case("Node.list()", [RIGHT, "we know []"]),              # again: still right
           Case("Node.list()", [RIGHT, "a connection made since"], setup="Node.ping(b.node)")],
    "03": [Case("os.getpid()", ["stopped with NameError", "'os' is not defined"]),
           Case('__import__("os").getpid()', ["this notebook's own process"]),
           Case('rpc.call(B, "os", "getpdi", [])', ["stopped with BadRpc", "getpdi"]),
           Case('str(rpc.call(B, "os", "getpid", []))', ["is a str", "an int"]),
           Case('rpc.call(B, "os", "getpid", [])', [RIGHT])],
    "04": [Case('Process.whereis("product-stock")', ["None", "a typo?"]),
           Case("Process.whereis", ["the function itself", "Process.whereis(\"...\")"]),
           Case('"product_stock"', ["the name itself"]),
           Case('Process.whereis("product_stock")', ["not yet", "spawn(handle_stock, [])"],
                setup='Process.unregister("product_stock")'),
           Case('Process.whereis("product_stock")', [RIGHT], rerun=["04-09"])],
    "05": [Case("receive", ["the function itself", "receive(timeout=1)", "took 1 stock list"]),
           Case("flush()", ["None", "flush() prints"]),
           Case("receive(timeout=1)[0]", ["not quite: got {'name': 'adidas'"]),
           Case("receive(timeout=1)", ["stopped with TimeoutError", "no stock process answers",
                                       'start_here, [\"product_stock\"'],
                setup='rpc.call(PS, Process.unregister, ["product_stock"])'),
           Case("receive(timeout=1)", [RIGHT], rerun=["05-03", "05-04", "05-06", "05-07"])],
    "06": [Case('("ask", self(), reebok)', ["stopped with NameError", "'reebok'"]),  # 1st try
           Case('("ask", "reebok")', ["three items", "dropped it"]),
           Case('("ask", self(), "Reebok")', ["you asked for 'Reebok'"]),
           Case('("ask", self, "reebok")', ["pos is not running", "the function self", "self()",
                                            'start_here, ["pos", pos_ask, SERVER]']),
           Case('("ask", self(), "reebok")', ["pos is not running",
                                              "run the cell that starts pos"]),
           Case(None, [], rerun=["06-05"]),
           Case('("ask", self(), "reebok")', [RIGHT, "There is no Product reebok"])],
    "07": [Case("upload.stat().st_size", ["a bare size", "(Node.self(), size)"]),
           Case(f"rpc.call(Node.self(), {MEASURE}, [])", ["measured on web@", "not on worker2"]),
           Case("rpc.call(workers[1].node, lambda: (Node.self(), upload.stat().st_size), [])",
                ["of web's file"]),
           Case(f"rpc.call(workers[1].node, {MEASURE}, [])", [RIGHT, "worker2@"])],
    "08": [Case("recieve(timeout=1)", ["stopped with NameError", "'recieve'"]),     # 1st try
           Case("Process.monitor(pid)", ["a reference", "second monitor"]),
           Case('receive(timeout=1, match=lambda m: m[:2] == ("DOWN", rf))',
                ["stopped with NameError", "rf"]),
           Case("receive(timeout=1)", [RIGHT, "'normal'"])],
    "09": [Case('rpc.call(SERVER, "erlang", "system_info", ["otp_release"])',
                ["stopped with BadRpc", 'Atom("otp_release")']),
           Case(OTP, ["the charlist itself"]),
           Case(f"bytes({OTP})", ["is bytes", ".decode()"]),
           Case(f"str({OTP})", ["how the list prints"]),
           Case(f"bytes({OTP}).decode()", [RIGHT])],
    "10": [Case("kil", ["stopped with NameError", "'kil' is not defined"]),
           Case('"shutdown"', ["traps exits", "lives on"]),
           Case('":kill"', ["Elixir's spelling", "the string 'kill'"]),
           Case('"killed"', ["dies WITH", "the signal that kills is 'kill'"]),
           Case('Process.exit(stubborn, "kill")', ["True, a bool", "the reason itself"]),
           Case('"kill"', [RIGHT]),
           Case("kil", ["stopped with NameError"])],          # after a right one: no ✓
    "11": [Case(f"len({MEMBERS}[Atom('room')]))".replace('"pg"', '":pg"'),
                ["stopped with BadRpc", 'the module is "pg"']),
           Case(f"len({MEMBERS}[Atom('room')]))".replace("ONE", '"names_one"'),
                ["stopped with TypeError", "the node is ONE"]),
           Case(f'len({MEMBERS}["room"]))', ["no member in that group", 'Atom("room")']),
           Case('len(pg.get_members("room"))', ["the number here", "ask names_one"]),
           Case("3", ["ask names_one"]),
           Case("True", ["is a bool"]),
           Case(f"len({MEMBERS}[Atom('room')]))".replace("get_members", "get_local_members"),
                ["one node's members only"]),
           Case(f"len({MEMBERS}[Atom('room')]))", [RIGHT])],
}
NOTEBOOKS = {p.name[:2]: p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}

# A helper restarted by a case (06's pos) has a new pid, and so have the processes spawned
# after it: the later cells are compared with the process numbers masked.
PID = re.compile(r"<(\d+)\.\d+\.0>")

# What the kernel is asked after each check: the notebook's own mailbox, and its connections.
STATE = ("from pydist import Node as _N, Process as _P, self as _self\n"
         "print(repr((_P.info(_self(), 'messages')[1], sorted(_N.list()))))")


def _masked(summary: dict) -> dict:
    return json.loads(PID.sub(r"<\1.M.0>", json.dumps(summary)))


def _ids(path) -> list[str]:
    return [c.get("id") for c in json.loads(path.read_text())["cells"]]


def _source(path, cell_id) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "".join(cells[_ids(path).index(cell_id)]["source"])


def _state(kc) -> tuple[list, list]:
    status, shown = _run(kc, STATE)
    assert status == "ok", shown
    return eval(shown["stdout"], {"__builtins__": {}}, {})   # noqa: S307 (our own repr of str lists)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("nn", sorted(CASES))
def test_wrong_answers_are_named_and_leave_nothing_behind(nn):
    if NOTEBOOKS[nn].name.startswith(ELIXIR_NOTEBOOKS) and shutil.which("elixir") is None:
        pytest.skip("needs Elixir: apt-get install -y erlang-base elixir")
    path = NOTEBOOKS[nn]
    ids = _ids(path)
    try_it, check = _source(path, f"{nn}-try-it"), _source(path, f"{nn}-try-check")
    assert try_it.count(" = ...") == 1, f"{path.name}: the Try it cell has one `name = ...` to fill"
    at = ids.index(f"{nn}-try-it")
    before = [(i, s, stored) for i, s, stored in _cells(path) if i < at]
    after = [(i, s, stored) for i, s, stored in _cells(path) if i > ids.index(f"{nn}-try-check")]

    with kernel_in(ROOT / "notebooks", on_exit=STOP_NODE) as (km, kc):
        for index, source, _ in before:
            status, shown = _run(kc, source)
            assert status == "ok", f"{path.name}, cell [{index}] before the Try it failed: {shown}"
        _, connected = _state(kc)
        for case in CASES[nn]:
            for cell_id in case.rerun:
                status, shown = _run(kc, _source(path, cell_id))
                assert status == "ok", f"{path.name}, re-running {cell_id}: {shown}"
            if case.setup:
                status, shown = _run(kc, case.setup)
                assert status == "ok", f"{path.name}, {case.setup}: {shown}"
                _, connected = _state(kc)          # the setup may connect: the check may not
            if case.answer is None:
                continue
            where = f"{path.name}, answer {case.answer!r}"
            _run(kc, try_it.replace(" = ...", f" = {case.answer}", 1))
            status, shown = _run(kc, check)
            out = shown.get("stdout", "")
            assert status == "ok", f"{where}: the check cell itself failed: {shown}"
            for words in case.says:
                assert words in out, f"{where}: the check should say {words!r}; it said:\n{out}"
            if RIGHT not in case.says:
                assert RIGHT not in out, f"{where}: a wrong answer passed:\n{out}"
            left, now = _state(kc)
            assert left == [], f"{where}: the check left messages in the notebook's mailbox: {left}"
            assert now == connected, f"{where}: the check changed the connections: " \
                                     f"{connected} before, {now} after"
        for index, source, stored in after:
            status, shown = _run(kc, source)
            if stored is not None:
                shown, stored = (_masked(x) for x in (shown, stored))
                assert shown == stored, f"{path.name}, cell [{index}] after the Try it:\n" \
                                        f"{source}\nstored: {stored}\nshown:  {shown}"
