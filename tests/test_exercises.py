"""The exercises: stubs in sync with the solutions, solutions pass, stubs fail, no hangs."""
import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

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
    ``old`` replaced by ``new``."""
    [solution] = (course / "solutions").glob(f"ex{number}_*.py")
    text = solution.read_text()
    assert old in text, f"the solution of {number} has no {old!r}"
    (course / "exercises" / solution.name).write_text(text.replace(old, new))


MISTAKES = [   # (exercise, a line of the solution, the learner's version, what must be said)
    ("06", "return receive(timeout=timeout,\n                   match=",
     "return receive(\n                   match=", "waits in receive() with no timeout"),
    ("04", "    while True:\n        match receive():\n            case \"inc\":",
     "    if True:\n        match receive():\n            case \"inc\":",
     "its function returned (keep the loop going with `while True:`)"),
    ("04", "            case (\"get\", sender):\n                send(sender, count)",
     "            case (\"get\", sender):\n                send(self(), count)",
     "does it send its answer to the sender in the message (not to self()"),
    ("04", "def counter() -> None:", "print(undefined_name)\n\ndef counter() -> None:",
     "raised NameError: name 'undefined_name' is not defined (at line"),
    ("04", "def counter() -> None:", "import time\ntime.sleep(60)\n\ndef counter() -> None:",
     "did not finish within 2 s: code at the top level of your file blocks, at line"),
    ("04", "def counter() -> None:", "def counter() -> None\n",
     "ex04_processes.py, line 15: expected ':' (a syntax error"),
]


@pytest.mark.parametrize("number, old, new, said", MISTAKES)
def test_the_checker_names_the_cause_of_common_mistakes(tmp_path, number, old, new, said):
    course = _course(tmp_path)
    _answer(course, number, old, new)
    r = check(number, "--task", "1" if number == "04" else "2", cwd=course,
              env={"PYDIST_CHECK_TASK_TIMEOUT": "3", "PYDIST_CHECK_IMPORT_TIMEOUT": "2"})
    assert said in r.stdout, f"expected the checker to say {said!r}, it said:\n{r.stdout}"
    assert "Traceback" not in r.stdout + r.stderr and "runpy" not in r.stdout + r.stderr


def test_one_task_hints_one_at_a_time_progress_and_reset(tmp_path):
    course = _course(tmp_path)
    r = check("04", "--task", "2", cwd=course)
    assert "task 2" in r.stdout and "task 1" not in r.stdout and "0/1 tasks pass" in r.stdout
    first, second, third = (check("04", "--hint", "2", cwd=course).stdout for _ in range(3))
    assert "hint 1 of 2" in first and "2." not in first.split("hint 1 of 2")[1]
    assert "hint 2 of 2" in second and "[product] + stock" in second and third == second
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
