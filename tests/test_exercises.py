"""The exercises: stubs in sync with the solutions, solutions pass, stubs fail, no hangs."""
import re
import shutil
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from pydist._diagnose import blame
from pydist._exercises import out_of_sync, stub_text


def check(*args, cwd=ROOT, env=None):
    import os
    return subprocess.run([sys.executable, "-m", "pydist", "check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


# Every exercise; 09 needs Elixir, and without it the checker says so and skips it.
EXERCISES = len(list((ROOT / "solutions").glob("ex[0-9][0-9]_*.py"))) - \
    (shutil.which("elixir") is None)


def results(output: str) -> dict[str, tuple[int, int]]:
    """{exercise: (passed, failed)} from "Exercise 04: ..." and "2/4 tasks pass." lines."""
    found = re.findall(r"^Exercise (\d\d):.*?^(\d+)/(\d+) tasks pass", output, re.M | re.S)
    return {n: (int(p), int(t) - int(p)) for n, p, t in found}


def test_every_stub_is_generated_from_its_solution():
    assert out_of_sync() == [], "run `make exercises` to regenerate the stubs"


def test_stub_generation_replaces_only_the_marked_blocks():
    solution = ('def f():\n    """Task 1."""\n    # BEGIN SOLUTION 1\n    return 42\n'
                '    # END SOLUTION\n\nX = 1\n')
    assert stub_text(solution) == ('def f():\n    """Task 1."""\n    raise NotImplementedError('
                                   '"Task 1: not done yet (read its docstring; the checker '
                                   'gives hints)")\n\nX = 1\n')


def test_every_solution_passes_every_task():
    r = check("--all", "--solutions")
    found = results(r.stdout)
    assert len(found) == EXERCISES, r.stdout + r.stderr
    assert all(failed == 0 and passed > 0 for passed, failed in found.values()), r.stdout
    assert r.returncode == 0


def test_every_untouched_stub_fails_every_task(tmp_path):
    r = check("--all", cwd=_course(tmp_path))     # a copy: the learner's progress stays
    found = results(r.stdout)
    assert len(found) == EXERCISES, r.stdout + r.stderr
    assert all(passed == 0 and failed > 0 for passed, failed in found.values()), r.stdout
    assert r.returncode == 1
    assert "not done yet" in r.stdout


def test_an_untouched_stub_says_not_done_yet_and_where_to_learn_it_the_same_every_time():
    runs = [check("04") for _ in range(2)]
    assert "Task 2: not done yet" in runs[0].stdout
    assert "learn it: Notebook 04, section “The article's `ProductStock`”" in runs[0].stdout
    assert "RESULT" not in runs[0].stdout and "Traceback" not in runs[0].stdout + runs[0].stderr
    same = [re.sub(r"\(\d+\.\d s\)", "", r.stdout) for r in runs]
    assert same[0] == same[1], "the same stub gave different messages on two runs"


def test_a_loop_that_never_ends_is_reported_not_waited_for(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "exercises", course / "exercises")
    stub = course / "exercises" / "ex05_cross_process_replies.py"
    stub.write_text(stub.read_text().replace(
        'def log_line(pid, action: str) -> str:',
        'def log_line(pid, action: str) -> str:\n    while True:\n        pass\n'
        'def _unused(pid, action):'))
    r = check("05", cwd=course, env={"PYDIST_CHECK_TASK_TIMEOUT": "1"})
    assert "did not finish within 1 s" in r.stdout, r.stdout + r.stderr


def test_check_explains_its_usage():
    r = check()
    assert r.returncode == 2 and "python3 course.py check 04" in r.stdout


def _course(tmp_path):
    course = tmp_path / "course"
    for folder in ("exercises", "solutions"):
        shutil.copytree(ROOT / folder, course / folder,
                        ignore=shutil.ignore_patterns(".progress.json", "*.bak"))
    (course / "notebooks").mkdir()                 # exercise 09 loads the notebook's Elixir
    shutil.copy(ROOT / "notebooks" / "product_stock.ex", course / "notebooks")
    return course


def _answer(course, number: str, old: str, new: str) -> None:
    """Put a learner's (wrong) answer into exercise ``number``: the solution's text with
    ``old`` replaced by ``new`` (``old`` None: the untouched stub, as the copy has it)."""
    if old is None:
        return
    [solution] = (course / "solutions").glob(f"ex{number}_*.py")
    text = solution.read_text()
    assert old in text, f"the solution of {number} has no {old!r}"
    (course / "exercises" / solution.name).write_text(text.replace(old, new))


STUB = None
MISTAKES = [   # (exercise, task, a line of the solution, the learner's version, what must be said)
    ("06", 2, "return receive(timeout=timeout,\n                   match=",
     "return receive(\n                   match=", "waits in receive() with no timeout"),
    ("04", 1, "    while True:\n        match receive():\n            case \"inc\":",
     "    if True:\n        match receive():\n            case \"inc\":",
     "its function returned (keep the loop going with `while True:`)"),
    ("04", 1, "            case (\"get\", sender):\n                send(sender, count)",
     "            case (\"get\", sender):\n                send(self(), count)",
     "does it send its answer to the sender in the message (not to self()"),
    # Elixir's habits: an atom's spelling, and a loop that calls itself
    ("04", 1, "            case \"inc\":", "            case \":inc\":",
     "none of the three was counted. The message is the Python str \"inc\""),
    ("04", 2, "    while True:\n        match receive():\n            case (\"add\", product):\n"
     "                stock = [product] + stock\n            case (\"status\", sender):\n"
     "                send(sender, stock)",
     "    match receive():\n        case (\"add\", product):\n"
     "            handle_stock([product] + stock)\n        case (\"status\", sender):\n"
     "            send(sender, stock)\n            handle_stock(stock)",
     "crashed with RecursionError: maximum recursion depth exceeded"),
    ("04", 1, "    count = 0\n    while True:\n", "    while True:\n        count = 0\n",
     "none of the three was counted. Does counter keep the count from one message to the next"),
    # ways that passed, or failed for a cause the checker named wrongly
    ("08", 2, "receive(timeout=timeout, match=lambda m: m == (\"nodedown\", node))",
     "receive(timeout=timeout)", "with ('noise', 'not a nodedown') in the mailbox, expected "
     "False, got True: it took that message for the nodedown. Wait for the one message"),
    ("08", 2, "receive(timeout=timeout, match=lambda m: m == (\"nodedown\", node))\n"
     "        return True", "return receive(timeout=timeout) == (\"nodedown\", node)",
     "expected False, got False, right only by luck: it took that message from the mailbox"),
    ("08", 3, "        if made == restarts:\n            return made\n",
     "        if made == restarts + 1:\n            return made\n",
     "it did not return within 3 s of the second restart: does it wait for a third crash?"),
    ("08", 3, "m[:2] == (\"DOWN\", ref)", "m[:2] == (\"DOWN\", pid)",
     "fragile_t crashed, and supervise started no new one within 2 s: does it wait for that "
     "process's own DOWN"),
    ("08", 3, "        pid = spawn(fun, *args)\n        Process.register(pid, name)\n"
     "        if made == restarts:\n            return made\n",
     "        if made == restarts:\n            return made\n"
     "        pid = spawn(fun, *args)\n        Process.register(pid, name)\n",
     "it returned 2 with no process registered as 'fragile_t': the second restart is a new "
     "process"),
    ("10", 2, "    ref = Process.monitor(name)\n    Process.exit(Process.whereis(name), \"kill\")\n"
     "    down = receive(timeout=timeout,\n                   match=lambda m: isinstance(m, "
     "tuple) and m[:2] == (\"DOWN\", ref))\n    return down[4]",
     "    Process.exit(Process.whereis(name), \"kill\")\n    return \"killed\"",
     "it returned 'killed', and its code asks no monitor: is that the reason you expect rather "
     "than the one reported?"),
    ("11", 2, "pid = rpc.call(node, \"global\", \"whereis_name\", [Atom(name)], timeout=5)",
     "pid = Global.whereis_name(name)",
     "was never asked (its :global.whereis_name(:ex_named"),
    # a wrong shape, which the check itself would choke on
    ("06", 3, "    send((\"pos\", store), (\"ask\", self(), product))\n"
     "    return show_msg(timeout)",
     "    send((\"pos\", store), (\"ask\", self, product))\n    try:\n"
     "        return show_msg(timeout)\n    except TimeoutError:\n        return None",
     "it got ('ask', <function self>, 'puma'); the sender is self (the function)"),
    ("06", 3, "send((\"pos\", store), (\"ask\", self(), product))",
     "send((\"pos\", store), (\"ask\", self, product))",
     "expected pos to get ('ask', your pid, product), it got ('ask', <function self>, 'puma'); "
     "the sender is self (the function): call it, self()"),
    ("02", 2, "return peers, sorted(Node.list())", "return names, sorted(Node.list())",
     "expected the handles that peer.start returns as the pair's first item, got ['m1x"),
    ("02", 2, "return peers, sorted(Node.list())", "return sorted(Node.list())",
     "expected a pair (the peer handles, sorted(Node.list())), got ['m1x"),
    ("04", 1, "def counter() -> None:", "print(undefined_name)\n\ndef counter() -> None:",
     "raised NameError: name 'undefined_name' is not defined (at line"),
    ("04", 1, "def counter() -> None:", "import time\ntime.sleep(60)\n\ndef counter() -> None:",
     "did not finish within 2 s: code at the top level of your file blocks, at line"),
    ("04", 1, "def counter() -> None:", "def counter() -> None\n",
     "ex04_processes.py, line 15: expected ':' (a syntax error"),
    # Elixir's habit: `after 1000` is a second; receive(timeout=1000) is 16 minutes
    ("06", 2, "return receive(timeout=timeout,", "return receive(timeout=1000,",
     "waits in receive() with timeout=1000 (line 39 of ex06_stock_central.py): that is 1000 "
     "seconds (pydist counts seconds; Elixir's `after 1000`"),
    ("04", 4, "return receive(timeout=timeout)", "return receive()",
     "your code waits in receive() with no timeout (line 54 of ex04_processes.py)"),
    ("05", 3, "return receive(timeout=timeout, match=lambda m: isinstance(m, tuple) and "
     "m[0] == \"show\")[1]", "return receive(timeout=timeout)[1]",
     "got 'o': ask_status took the first message in the mailbox, 'noise', instead of the "
     "('show', stock) answer"),
    ("06", 2, "return receive(timeout=timeout,\n                   match=lambda m: "
     "isinstance(m, tuple) and len(m) == 2 and m[0] == \"print\")[1]",
     "return receive(timeout=timeout)[1]",
     "got 'o': show_msg took 'noise', the first message in the mailbox"),
    ("04", 3, "pid = spawn(handle_stock, [])", "pid = spawn(handle_stock([]))",
     "`pid = spawn(handle_stock([]))`, calls handle_stock here, in the caller, where it runs "
     "for ever, instead of in a new process"),
    ("06", 1, STUB, STUB, "Task 1: not done yet"),
    ("08", 3, STUB, STUB, "Task 3: not done yet"),
    ("08", 3, "Process.register(pid, name)", "Process.register(pid, nam)",
     "supervise crashed with NameError: name 'nam' is not defined"),
    ("08", 2, "    Node.monitor(node)\n", "",
     "no ('nodedown', node) message came. It comes only to a process that asked for it: "
     "Node.monitor(node) first"),
    ("02", 3, "while sorted(rpc.call(node, Node.list, [], timeout=timeout))",
     "while sorted(Node.list())", "your code looked at another list. Node.list() is this "
     "node's list"),
    ("03", 2, "return rpc.call(node, lambda: Node.self(), [])", "return Node.self()",
     "the name of this node (the checker's): your function ran here"),
    ("07", 2, "for piece in chunks(data):", "for piece in [data]:",
     "file_server sent a chunk of 256000 bytes, expected chunks of at most 65536"),
    ("09", 2, "send((\"server\", server_node), (Atom(\"add\"), self(), product))",
     "send((\"server\", server_node), (\"add\", self(), product))",
     "Its first element 'add' is a Python str, which arrives as the Elixir string \"add\", "
     "not the atom :add; ProductStock's clauses match atoms. Use Atom('add')"),
    ("09", 3, "\"Elixir.String\"", "\"String\"",
     "the Elixir module String is the atom 'Elixir.String'"),
    # these three passed once: each must fail, and say why
    ("03", 1, "return rpc.call(node, \"str\", \"upper\", [text])", "return text.upper()",
     "expected BadRpc, got 'HELLO': the upper-casing ran here, not on the node"),
    ("08", 1, "return rpc.call(node, *args, timeout=2)", "return rpc.call(node, *args)",
     "your code waits in rpc.call() with no timeout (line 23 of ex08_when_nodes_fail.py)"),
    ("10", 1, STUB, STUB, "Task 1: not done yet"),
    ("10", 1, "was = Process.flag(\"trap_exit\", True)", "was = False",
     "your own process died with the linked one (of ValueError('boom')): it does not trap "
     "exits. Call Process.flag('trap_exit', True) before spawn_link"),
    ("10", 1, "    finally:\n        Process.flag(\"trap_exit\", was)",
     "    finally:\n        pass", "afterwards it traps them. Put the flag back as it was"),
    ("10", 2, "Process.exit(Process.whereis(name), \"kill\")",
     "Process.exit(Process.whereis(name), \"shutdown\")",
     "as a message and lived on: it traps exits, so that signal cannot end it. One reason "
     "cannot be trapped: 'kill'"),
    ("10", 3, "                if product not in stock:\n"
     "                    raise ValueError(f\"no {product} in stock\")\n", "",
     "expected the server to crash with ValueError('no puma in stock'), got the reply "
     "['adidas']"),
    ("10", 3, "                stock = [p for p in stock if p != product]\n"
     "                return (\"reply\", stock, stock)",
     "                stock = [p for p in stock if p != product]\n                return stock",
     "StockServer.handle_call returned ['adidas'] for ('take', 'nike'); expected "
     "('reply', reply, state)"),
    ("10", 4, "    Process.flag(\"trap_exit\", True)\n    made = 0", "    made = 0",
     "supervise died with it (of ValueError('no puma in stock')): a supervisor must trap "
     "exits"),
    ("10", 4, "server.start_link(initial, name=name)", "server.start(initial, name=name)",
     "Is the server linked to supervise (server.start_link, not start)"),
    ("10", 5, "    while True:\n        Process.sleep(every)",
     "    import time\n    while True:\n        time.sleep(every)",
     "its thread still waits (line 107 of ex10_links_and_supervisors.py). time.sleep is a "
     "C call that no kill can interrupt; Process.sleep(every) is cut short by one"),
    # Elixir's habit: Process.sleep(50) is 50 ms there, 50 s here
    ("10", 5, "Process.sleep(every)", "Process.sleep(every * 1000)",
     "got 0 ('tick', n) messages in 2 s: pydist counts seconds (Process.sleep(0.05)"),
    ("10", 5, 'send(target, ("tick", n))', 'send(target, "tick")',
     "and ['tick', 'tick', 'tick'] instead: each tick is the tuple ('tick', n)"),
    ("10", 5, 'send(target, ("tick", n))', 'send(target, ("tick", n))\n        return',
     "ticker returned after 1 tick(s): it must go on until it is killed"),
    ("10", 5, "Process.sleep(every)", "receive(timeout=every)",
     "ticker crashed with TimeoutError"),
    ("10", 3, 'return ("ok", stock)', 'return (":ok", stock)',
     "(':ok' is Elixir's spelling: the atom :ok is the string 'ok' here)"),
    ("11", 3, 'send(sender, (Atom("heard"), Atom(Node.self()), text))',
     'send(sender, ("heard", Atom(Node.self()), text))', "has 'heard' as a plain str"),
    ("11", 4, 'send(pid, (Atom("chat"), self(), text))', 'send(pid, ("chat", self(), text))',
     "is the first element Atom('chat')? A plain 'chat' reaches it as a binary"),
]
MISLEADING = ["a loop that never ends?", "found none", "Traceback", "runpy",
              "your code raised TimeoutError"]


@pytest.mark.parametrize("number, task, old, new, said", MISTAKES,
                         ids=[f"{m[0]}-{m[1]}-{i}" for i, m in enumerate(MISTAKES)])
def test_the_checker_names_the_cause_of_common_mistakes(tmp_path, number, task, old, new, said):
    if number in ("09", "11") and shutil.which("elixir") is None:
        pytest.skip(f"exercise {number} needs Elixir")
    course = _course(tmp_path)
    _answer(course, number, old, new)
    timeouts = {"PYDIST_CHECK_IMPORT_TIMEOUT": "2"}
    if "time.sleep(60)" not in (new or ""):
        timeouts["PYDIST_CHECK_TASK_TIMEOUT"] = "15"   # a learner's: causes are named sooner
    started = time.monotonic()
    r = check(number, "--task", str(task), cwd=course, env=timeouts)
    took = time.monotonic() - started
    out = r.stdout + r.stderr
    assert said in r.stdout, f"expected the checker to say {said!r}, it said:\n{out}"
    assert r.returncode != 0 and f"✓ task {task}" not in r.stdout, out
    for wrong in MISLEADING:
        assert wrong not in out, f"the checker said {wrong!r}, not the cause:\n{out}"
    assert took < 12, f"the checker took {took:.1f} s to name the cause:\n{out}"


def test_a_task_still_running_after_5_s_says_where_it_waits(tmp_path):
    course = _course(tmp_path)
    _answer(course, "05", "def log_line(pid, action: str) -> str:",
            "def log_line(pid, action: str) -> str:\n    import time\n    time.sleep(60)\n"
            "def _unused(pid, action):")
    r = check("05", "--task", "1", cwd=course, env={"PYDIST_CHECK_TASK_TIMEOUT": "7"})
    lines = r.stdout.splitlines()
    [still] = [line for line in lines if "still running" in line]
    assert "task 1 still running after 5 s, at line 18 of ex05_cross_process_replies.py " \
        "(`time.sleep(60)`); stopped at 7 s" in still, r.stdout
    assert lines.index(still) < lines.index(next(x for x in lines if "✗ task 1" in x))
    assert "did not finish within 7 s; it was at line 18 of ex05_cross_process_replies.py, " \
        "`time.sleep(60)`" in r.stdout, r.stdout


def test_blame_tells_a_check_that_chokes_on_what_it_was_given_from_its_own_step(tmp_path):
    checks = tmp_path / "checks"
    checks.mkdir()
    source = checks / "check_99.py"
    source.write_text("def task(peers):\n    return sorted(p.node for p in peers)\n\n\n"
                      "def step():\n    from pydist import Node\n    return Node.ping(42)\n")
    space: dict = {}
    exec(compile(source.read_text(), str(source), "exec"), space)
    mine = tmp_path / "ex99_mine.py"
    with pytest.raises(AttributeError) as info:
        space["task"](["b@vm"])
    said = blame(info.value, mine, checks)
    assert said == ("the check could not use what your code returned or sent: AttributeError: "
                    "'str' object has no attribute 'node', in the check's `return sorted(p.node "
                    "for p in peers)` (line 2 of check_99.py): compare it with the task's "
                    "docstring"), said
    with pytest.raises(Exception) as info:                 # raised inside pydist
        space["step"]()
    said = blame(info.value, mine, checks)
    assert said.startswith("the check's own step `return Node.ping(42)` (line 7 of "
                           "check_99.py) failed: "), said


def test_what_task_2_started_is_stopped_whatever_it_returned(tmp_path):
    course = _course(tmp_path)
    _answer(course, "02", "return peers, sorted(Node.list())", "return names, sorted(Node.list())")
    r = check("02", "--task", "2", cwd=course)
    assert "expected the handles that peer.start returns" in r.stdout, r.stdout
    r = check("02", cwd=course)           # left running, task 2's peers would join task 3's mesh
    assert "✓ task 3" in r.stdout, r.stdout


def test_a_monitor_asked_in_a_helper_counts(tmp_path):
    course = _course(tmp_path)
    _answer(course, "10", "    ref = Process.monitor(name)\n",
            "    ref = _watch(name)\n")
    stub = course / "exercises" / "ex10_links_and_supervisors.py"
    stub.write_text(stub.read_text() + "\n\ndef _watch(name):\n    return Process.monitor(name)\n")
    r = check("10", "--task", "2", cwd=course)
    assert "✓ task 2" in r.stdout, r.stdout + r.stderr


def test_reset_twice_keeps_both_of_the_learners_files(tmp_path):
    course = _course(tmp_path)
    stub = course / "exercises" / "ex04_processes.py"
    untouched = stub.read_text()
    for attempt in ("first", "second"):
        stub.write_text(untouched + f"# my {attempt} attempt\n")
        assert "untouched stub again" in check("--reset", "04", cwd=course).stdout
        assert stub.read_text() == untouched
    backups = course / "exercises"
    assert (backups / "ex04_processes.py.bak").read_text().endswith("# my first attempt\n")
    assert (backups / "ex04_processes.py.bak2").read_text().endswith("# my second attempt\n")
    r = check("--reset", "04", cwd=course)                   # the stub itself: nothing to keep
    assert "already the untouched stub" in r.stdout
    assert not (backups / "ex04_processes.py.bak3").exists()


def test_a_pass_with_elixirs_milliseconds_still_gets_a_note(tmp_path):
    """receive(timeout=2000) passes when the message comes at once, yet waits 33 minutes
    when it does not: the checker says so even on a pass."""
    course = _course(tmp_path)
    _answer(course, "10", "message = receive(timeout=timeout,", "message = receive(timeout=2000,")
    r = check("10", "--task", "1", cwd=course)
    assert "✓ task 1" in r.stdout, r.stdout
    assert "receive(... 2000) waits 2000 seconds here" in r.stdout, r.stdout
    assert "Elixir's 2000 ms is 2" in r.stdout, r.stdout


def test_one_task_hints_one_at_a_time_progress_and_reset(tmp_path):
    course = _course(tmp_path)
    r = check("04", "--task", "2", cwd=course)
    assert "task 2" in r.stdout and "task 1" not in r.stdout and "0/1 tasks pass" in r.stdout
    r = check("04", "--task", "7", cwd=course)              # no such task: never "Well done"
    assert r.returncode == 2 and "has no task 7: its tasks are 1 to 4" in r.stdout, r.stdout
    first, second, third, fourth = (check("04", "--hint", "2", cwd=course).stdout
                                    for _ in range(4))
    assert "hint 1 of 3" in first and "2." not in first.split("hint 1 of 3")[1]
    assert "hint 2 of 3" in second and "[product] + stock" in second
    assert "hint 3 of 3" in third and "no tail calls" in third and fourth == third
    stub = course / "exercises" / "ex04_processes.py"
    stub.write_text((course / "solutions" / "ex04_processes.py").read_text())
    assert "4/4 tasks pass" in check("04", cwd=course).stdout
    progress = check("--progress", cwd=course).stdout
    assert "04      ✓✓✓✓" in progress and "05      ····" in progress
    r = check("--reset", "04", cwd=course)
    assert "untouched stub again" in r.stdout and "not done yet" in stub.read_text()
    assert "BEGIN SOLUTION" in (course / "exercises" / "ex04_processes.py.bak").read_text()


def test_without_elixir_exercise_09_says_how_to_install_it(tmp_path):
    """A learner without Elixir: exercise 09 is skipped with the install command."""
    (tmp_path / "bin").mkdir()                     # a PATH where no elixir is found
    r = check("09", env={"PATH": str(tmp_path / "bin")})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "skipped: exercise 09 needs Elixir: apt-get install -y erlang-base elixir" \
        in r.stdout, r.stdout


def test_a_wrong_exercise_name_and_a_closed_pipe_are_said_plainly():
    r = check("ex04")
    assert r.returncode == 2 and "there is no exercise 'ex04'" in r.stdout, r.stdout
    # `check 02 | head -2`: the reader goes early; no traceback follows, also with the
    # buffered stdout of a shell that does not set PYTHONUNBUFFERED
    import os
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    process = subprocess.Popen([sys.executable, "-m", "pydist", "check", "02"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
    assert process.stdout.readline().startswith("Exercise 02")
    process.stdout.close()
    _, err = process.communicate(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
