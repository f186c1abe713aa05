"""The exercises: stubs in sync with the solutions, solutions pass, stubs fail, no hangs."""
import re
import shutil
import subprocess
import sys

from conftest import ROOT

from pydist._exercises import out_of_sync, stub_text


def check(*args, cwd=ROOT, env=None):
    import os
    return subprocess.run([sys.executable, "-m", "pydist", "check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def results(output: str) -> dict[str, tuple[int, int]]:
    return {n: (int(p), int(f)) for n, p, f in
            re.findall(r"^RESULT (\d\d) passed=(\d+) failed=(\d+)$", output, re.M)}


def test_every_stub_is_generated_from_its_solution():
    assert out_of_sync() == [], "run `make exercises` to regenerate the stubs"


def test_stub_generation_replaces_only_the_marked_blocks():
    solution = ('def f():\n    """Task 1."""\n    # BEGIN SOLUTION 1\n    return 42\n'
                '    # END SOLUTION\n\nX = 1\n')
    assert stub_text(solution) == ('def f():\n    """Task 1."""\n    raise NotImplementedError('
                                   '"Task 1: not done yet (read the docstring and the hints '
                                   'above)")\n\nX = 1\n')


def test_every_solution_passes_every_task():
    r = check("--all", "--solutions")
    found = results(r.stdout)
    assert len(found) == 8, r.stdout + r.stderr
    assert all(failed == 0 and passed > 0 for passed, failed in found.values()), r.stdout
    assert r.returncode == 0


def test_every_untouched_stub_fails_every_task():
    r = check("--all")
    found = results(r.stdout)
    assert len(found) == 8, r.stdout + r.stderr
    assert all(passed == 0 and failed > 0 for passed, failed in found.values()), r.stdout
    assert r.returncode == 1
    assert "not done yet" in r.stdout


def test_a_failing_task_explains_what_was_called_and_what_came_back():
    r = check("04")
    assert "called counter() then ('get', me)" in r.stdout
    assert "the process is gone" in r.stdout


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
    assert r.returncode == 2 and "python -m pydist check 04" in r.stdout
