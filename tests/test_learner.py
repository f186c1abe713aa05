"""The course from the learner's side: the README's commands on a fresh clone with nothing
activated, `python -m pydist` in JupyterLab's terminal, and the notebooks' exercise links
opening in a running JupyterLab. Real processes and a real server, no mocks."""

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import jupyter_client
import pytest
from conftest import ROOT, _free_port, spawn_python, stop_process

pytest.importorskip("jupyterlab")


def _course():
    spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
    course = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(course)
    return course


VENV = Path(sys.prefix)           # the environment these tests run in: the course's .venv


def _nothing_activated() -> dict:
    """A shell's environment before anyone activates anything: no VIRTUAL_ENV, and no
    environment's bin/ on PATH."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep)
        if p and not Path(p, "activate").exists() and Path(p) != VENV / "bin")
    return env


# ------------------------------------------------------------------ a fresh clone


@pytest.fixture
def clone(tmp_path):
    """A fresh clone of this course, as a learner gets it."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    dest = tmp_path / "course"
    subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(ROOT), str(dest)],
                   check=True, timeout=60)
    subprocess.run(["git", "-C", str(dest), "checkout", "-q", head], check=True, timeout=60)
    # The environment was installed from this very pyproject.toml; only the copy's time is
    # new, and course.py would take that for a change and install again.
    os.utime(dest / "pyproject.toml", (0, 0))
    return dest


@pytest.mark.timeout(180)
def test_readme_check_command_runs_in_a_fresh_clone_with_nothing_activated(clone):
    env = _nothing_activated()
    python3 = shutil.which("python3", path=env["PATH"])
    if python3 is None:
        pytest.skip("no python3 on PATH outside the course's environment")
    env["PYDIST_VENV"] = str(VENV)                      # absolute: this course's .venv
    r = subprocess.run([python3, "course.py", "check", "01"], cwd=clone, env=env,
                       capture_output=True, text=True, timeout=150)
    out = r.stdout + r.stderr
    assert "installing" not in out, f"course.py installed again instead of reusing {VENV}:\n{out}"
    assert "ModuleNotFoundError" not in out and "Traceback" not in out, \
        f"`python3 course.py check 01` did not reach the checker:\n{out}"
    assert "Exercise 01" in out and "✗ task 1" in out, \
        f"expected the checker's per-task results for the untouched stub:\n{out}"
    assert "Task 1: not done yet (read its docstring; the checker gives hints)" in out, \
        f"the stub's task 1 should be reported as not done yet, in those words:\n{out}"
    assert "--hint 1" in out, f"a failed task points to its hint:\n{out}"
    assert r.returncode != 0, "a failing exercise makes the check command fail"


def test_python_m_pydist_names_works_in_jupyterlabs_terminal(node):
    """JupyterLab's terminal gets the environment `course.py lab` gives the server."""
    _, env = _course().lab_command([], _nothing_activated())
    python = shutil.which("python", path=env["PATH"])
    assert python and Path(python).parent == Path(_course().PYTHON).parent, \
        f"in the lab's terminal, `python` should be the course's ({_course().PYTHON}), " \
        f"not {python}"
    r = subprocess.run(["python", "-m", "pydist", "names"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and node.split("@")[0] in r.stdout, \
        f"`python -m pydist names` should list this test's node {node}:\n{r.stdout}{r.stderr}"


def _outside_the_tests() -> dict:
    """The environment of a shell, not of a process this test session started."""
    return {k: v for k, v in os.environ.items() if k != "PYDIST_TEST_SESSION"}


@pytest.mark.timeout(240)
def test_the_notebooks_tests_pass_while_a_learners_lab_runs_nodes_a_and_b():
    """A learner's lab has notebook 02 open: nodes `a` and `b` run on the host's port
    mapper. `python3 course.py test` must not see them: not in 01's `names` output, and
    not as "the name 'a' is already taken". The host's mapper is played by one on a
    port of this test's own (the learner's default, for the inner test run)."""
    host_port = str(_free_port())
    host = {"PYDIST_EPMD_PORT": host_port, "ERL_EPMD_PORT": host_port,
            "PYDIST_COOKIE": "a-learners-cookie"}
    lab_nodes = spawn_python("""
        import sys
        from pydist import Node, peer
        Node.start("a")
        with peer.start("b") as b:
            print("running", Node.self(), b.node, flush=True)
            sys.stdin.readline()                        # until the test closes stdin
        Node.stop()
        """, env=host)
    try:
        line = lab_nodes.stdout.readline()
        assert line.startswith("running a@"), f"the learner's nodes did not start: {line}"
        names = subprocess.run([sys.executable, "-m", "pydist", "names"], capture_output=True,
                               text=True, timeout=30, env={**os.environ, **host})
        assert "name a at port" in names.stdout and "name b at port" in names.stdout, \
            names.stdout + names.stderr
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "notebooks/01_naming_nodes.ipynb",
                            "notebooks/02_ping_connect_list.ipynb"],
                           cwd=ROOT, capture_output=True, text=True, timeout=200,
                           env={**_outside_the_tests(), **host})
        out = r.stdout + r.stderr
        assert "already taken" not in out, out[-3000:]
        assert r.returncode == 0 and " passed" in out, out[-3000:]
    finally:
        lab_nodes.stdin.close()
        try:
            lab_nodes.wait(10)
        except subprocess.TimeoutExpired:
            pass
        stop_process(lab_nodes)


# ------------------------------------------------------------------ a running JupyterLab


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def lab(tmp_path):
    """JupyterLab started as `python3 course.py lab` starts it, on a free port with a token."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    env.pop("JUPYTERLAB_WORKSPACES_DIR", None)      # as course.py lab sets it, not the caller
    args, env = _course().lab_command(
        ["--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={token}"], env)
    log = open(tmp_path / "lab.log", "w+")
    server = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _get(f"{base}/api/status?token={token}")[0] == 200:
                    break
            except OSError:
                pass
            log.seek(0)
            assert server.poll() is None, f"jupyter lab exited:\n{log.read()}"
            assert time.monotonic() < deadline, f"jupyter lab did not answer:\n{log.read()}"
            time.sleep(0.3)
        yield base, token
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.mark.timeout(150)
def test_every_notebooks_exercise_link_opens_in_the_running_lab(lab):
    base, token = lab
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        last = "".join(json.loads(notebook.read_text())["cells"][-1]["source"])
        link = re.search(r"\]\(([^)]*exercises/ex[^)]+\.py)\)", last)
        assert link, f"{notebook.name}: its last cell has no link to its exercise"
        # JupyterLab resolves a markdown link relative to the notebook's folder
        target = (notebook.parent / link[1]).resolve()
        path = target.relative_to(ROOT).as_posix()
        status, body = _get(f"{base}/files/{path}?token={token}")
        assert status == 200 and body.decode() == target.read_text(), \
            f"{notebook.name}: its link {link[1]} should open {path} in the lab, got HTTP {status}"
        status, body = _get(f"{base}/api/contents/{path}?token={token}")
        assert status == 200 and json.loads(body)["content"] == target.read_text(), \
            f"{notebook.name}: JupyterLab cannot open {path} in its editor (HTTP {status})"
        status, _ = _get(f"{base}/lab/tree/{path}?token={token}")
        assert status == 200, f"{notebook.name}: /lab/tree/{path} answered HTTP {status}"
    status, _ = _get(f"{base}/api/contents/{_course().FIRST_NOTEBOOK}?token={token}")
    assert status == 200, "the notebook `course.py lab` opens first is not served"


@pytest.mark.timeout(150)
def test_the_lab_saves_its_layout_in_the_course_folder_not_the_account(lab):
    base, token = lab
    folder = ROOT / ".jupyter" / "workspaces"
    before = set(folder.glob("*")) if folder.exists() else set()
    space = f"pydist-test-{secrets.token_hex(4)}"
    url = f"{base}/lab/api/workspaces/{space}?token={token}"
    body = json.dumps({"data": {}, "metadata": {"id": space}}).encode()
    try:
        put = urllib.request.Request(url, data=body, method="PUT",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(put, timeout=10) as r:
            assert r.status in (200, 204), f"saving a workspace: HTTP {r.status}"
        made = set(folder.glob("*")) - before
        assert len(made) == 1 and next(iter(made)).name.startswith(space), \
            f"expected the workspace in {folder}, found there {sorted(made)}"
    finally:
        with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10):
            pass
    assert set(folder.glob("*")) == before


# ------------------------------------------------------------------ course.py lab itself


@pytest.mark.parametrize("rest, opens_first", [
    ([], True), (["--port", "8899"], True), (["--port=8899"], True),
    (["--no-browser", "--port", "8899", "--ServerApp.ip", "127.0.0.1"], True),
    (["notebooks/04_processes.ipynb"], False),
    (["--port", "8899", "notebooks/04_processes.ipynb"], False),
    (["--no-browser", "notebooks/04_processes.ipynb"], False),
])
def test_lab_opens_the_first_notebook_unless_told_another_one(rest, opens_first):
    course = _course()
    args, _ = course.lab_command(rest, {})
    assert (course.FIRST_NOTEBOOK in args) == opens_first, args
    at = args.index(f"--ServerApp.root_dir={ROOT}") + 1
    assert args[at:at + len(rest)] == rest, f"the learner's arguments, in order: {args}"


def _processes_with(text: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.timeout(180)
def test_ctrl_c_on_course_py_lab_stops_the_lab_and_its_kernels_quietly(tmp_path):
    """`python3 course.py lab --port N`: the lab answers on N with 01 open; Ctrl-C in the
    terminal (SIGINT to the foreground process group) stops JupyterLab and its kernels,
    with no traceback."""
    port, token = _free_port(), secrets.token_hex(16)
    browser, opened = tmp_path / "browser", tmp_path / "opened"   # a browser that notes the URL
    browser.write_text(f'#!/bin/sh\ncat "${{1#file://}}" >> {opened}.part && '
                       f'mv {opened}.part {opened}\n')     # the lab's redirect page
    browser.chmod(0o755)
    env = {**os.environ, "PYDIST_VENV": str(VENV), "BROWSER": f"{browser} %s",
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    log = open(tmp_path / "lab.log", "w+")
    lab = subprocess.Popen([sys.executable, "course.py", "lab", "--port", str(port),
                            "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
                            f"--ServerApp.token={token}"], cwd=ROOT, env=env, stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _get(f"{base}/api/status?token={token}")[0] == 200:
                    break
            except OSError:
                pass
            log.seek(0)
            assert lab.poll() is None, f"course.py lab exited:\n{log.read()}"
            assert time.monotonic() < deadline, f"the lab did not answer on {port}:\n{log.read()}"
            time.sleep(0.3)
        log.seek(0)
        started = log.read()
        assert "installing" not in started, started
        deadline = time.monotonic() + 30
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert opened.exists(), f"`course.py lab` opened no browser:\n{started}"
        assert f"{port}/lab/tree/notebooks/01_naming_nodes.ipynb" in opened.read_text(), \
            f"`course.py lab --port {port}` should open notebook 01: {opened.read_text()}"
        request = urllib.request.Request(f"{base}/api/kernels?token={token}", method="POST",
                                         data=b'{"name": "python3"}',
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as r:
            kernel = json.loads(r.read())["id"]
        deadline = time.monotonic() + 30
        while not _processes_with(f"kernel-{kernel}.json") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_with(f"kernel-{kernel}.json"), "the lab started no kernel"
        # A learner stops the lab with a notebook open, its kernel up (a kernel still
        # importing IPython when Jupyter shuts it down prints its own KeyboardInterrupt).
        client = jupyter_client.BlockingKernelClient(
            connection_file=str(tmp_path / "runtime" / f"kernel-{kernel}.json"))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
        finally:
            client.stop_channels()
        os.killpg(lab.pid, signal.SIGINT)                   # Ctrl-C in the terminal
        lab.wait(60)
        log.seek(0)
        out = log.read()
        assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
        assert "JupyterLab is stopped." in out and lab.returncode == 0, out
        assert not _processes_with(token), f"JupyterLab outlived course.py lab:\n{out}"
        deadline = time.monotonic() + 10
        while _processes_with(f"kernel-{kernel}.json") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _processes_with(f"kernel-{kernel}.json"), "a kernel outlived the lab"
    finally:
        for pid in _processes_with(token) | _processes_with(str(tmp_path / "runtime")):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if lab.poll() is None:
            lab.kill()
        lab.wait(10)
        log.close()
