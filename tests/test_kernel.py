"""The learner's loop in a real Jupyter kernel, driven with jupyter_client: the stop
button interrupts the cell that waits, never the cluster; cells run again work."""

import json
import queue
import re
import shutil
import time

import pytest
from conftest import ELIXIR_NOTEBOOKS, ROOT, kernel_in, reply_to

jupyter_client = pytest.importorskip("jupyter_client")


@pytest.fixture
def kernel():
    with kernel_in(ROOT) as both:
        yield both


def _idle(kc, msg_id: str, timeout: float = 30) -> None:
    """Wait until the kernel says it is idle after the cell ``msg_id``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status" \
                and msg["content"]["execution_state"] == "idle":
            return
    raise AssertionError(f"the kernel did not go idle after the interrupted cell in {timeout} s")


def _run(kc, code: str, timeout: float = 30) -> tuple[str, str, str]:
    """(status, text printed, error name) of one cell."""
    msg_id = kc.execute(code)
    text, error = [], ""
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the cell did not finish in {timeout} s: {code!r}") from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            text.append(content["text"])
        elif kind == "execute_result":
            text.append(content["data"].get("text/plain", ""))
        elif kind == "error":
            error = content["ename"]
        elif kind == "status" and content["execution_state"] == "idle":
            break
    return reply_to(kc, msg_id, timeout)["content"]["status"], "".join(text), error


def test_a_reply_left_in_the_shell_channel_is_not_taken_for_a_cells(kernel):
    km, kc = kernel
    kc.kernel_info()              # as wait_for_ready leaves one behind when IOPub is slow
    assert _run(kc, "1/0")[0] == "error"
    assert _run(kc, "print('fine')")[:2] == ("ok", "fine\n")


def test_the_stop_button_stops_the_cell_not_the_peers(kernel):
    km, kc = kernel
    status, out, _ = _run(kc, "from pydist import *\nNode.start('kstop')\n"
                              "b = peer.start('kstopb')\nprint(Node.list())")
    assert status == "ok" and "kstopb@" in out, out
    for waiting in ("receive()", "rpc.call(b.node, 'time', 'sleep', [30])"):
        msg_id = kc.execute(waiting)
        time.sleep(1.0)
        km.interrupt_kernel()
        reply = reply_to(kc, msg_id, timeout=10)
        assert reply["content"]["ename"] == "KeyboardInterrupt", reply["content"]
        _idle(kc, msg_id)
        check = "print(Node.list(), rpc.call(b.node, 'operator', 'add', [1, 2]))"
        status, out, error = _run(kc, check)
        if status == "aborted":           # ipykernel drops a cell sent while it still aborts
            time.sleep(0.5)               # what followed the error (stop_on_error): run again
            status, out, error = _run(kc, check)
        assert status == "ok" and "kstopb@" in out and "3" in out, \
            f"after interrupting {waiting}, the peer was gone: {out} {error}"
    _run(kc, "Node.stop()")


def test_a_notebook_run_twice_from_the_top_works(kernel):
    _, kc = kernel
    cells = ["from pydist import *", "Node.start('ktwice')", "b = peer.start('ktwiceb')",
             "print(rpc.call(b.node, 'operator', 'add', [20, 22]))"]
    for _ in range(2):
        for cell in cells:
            status, out, error = _run(kc, cell)
            assert status == "ok", f"{cell!r} failed the second time: {error} {out}"
        assert "42" in out
    _run(kc, "Node.stop()")


def _code_cells(path, answered: bool = False) -> list[str]:
    """The notebook's code cells but its last (the exercise check); with `answered`, each
    "Try it" cell has its `...` replaced by the answer its "Show an answer" block gives."""
    cells = json.loads(path.read_text())["cells"]
    answers = {}
    for c in cells:
        if c["cell_type"] == "markdown" and c.get("id", "").endswith("-try"):
            answer = re.search(r"```python\n(.*?)\n```", "".join(c["source"]), re.S)[1]
            answers[c["id"] + "-it"] = answer
    code = []
    for c in cells:
        source = "".join(c["source"])
        if c["cell_type"] != "code" or "pydist check" in source:
            continue
        if answered and c.get("id") in answers:
            answer = answers[c["id"]]
            name = answer.split(" = ")[0]
            source = re.sub(rf"^{name} = \.\.\.$", answer.replace("\\", r"\\"), source,
                            flags=re.M)
        code.append(source)
    return code


NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_notebook_runs_twice_from_the_top_in_one_kernel(notebook):
    if notebook.startswith(ELIXIR_NOTEBOOKS) and shutil.which("elixir") is None:
        pytest.skip("needs Elixir: apt-get install -y erlang-base elixir")
    """Run, then run again from the top in the same kernel, as a learner does: first
    to the end, then (the harder case) again with the first run's nodes still up to
    just before the clean-up."""
    with kernel_in(ROOT / "notebooks") as (km, kc):
        path = ROOT / "notebooks" / notebook
        cells = _code_cells(path)
        for run, upto in (("first", len(cells) - 1), ("second", len(cells))):
            if run == "second":                  # a learner who did the "Try it" cells
                cells = _code_cells(path, answered=True)
            for i, cell in enumerate(cells[:upto]):
                status, out, error = _run(kc, cell, timeout=60)
                assert status == "ok", \
                    f"{notebook}, {run} run, cell {i + 1}: {error}\n{cell}\n{out}"
                if "is ...:" in cell or "✓" in cell:          # a "Try it" check cell
                    verdict = "✓" if run == "second" else "not yet"
                    assert verdict in out, \
                        f"{notebook}, {run} run, cell {i + 1}: the Try it check said\n{out}"
