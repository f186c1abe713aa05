"""The test session's own port mapper port and cookie, set before anything runs.

This file sits at the top of the course so that it applies to every run of pytest,
whatever its arguments: ``pytest notebooks/`` as much as ``pytest tests/``. A
learner's lab and its nodes use the host's port mapper (4369, or the port in their
PYDIST_EPMD_PORT/ERL_EPMD_PORT); the tests, notebooks included, register their nodes
(``a``, ``b``, ``server``...) with a mapper on a free port of their own, so a running
lab neither takes their names nor shows up in their ``names`` listings.

The processes a test session starts (peers, kernels) inherit that environment, marked
with ``PYDIST_TEST_SESSION``. A peer that unpickles a test's function imports the test's
module, which imports ``conftest`` by name; the peer runs in this folder, so that name
finds this file first: there it stands for tests/conftest.py, and changes nothing.
"""

import importlib.util
import os
import signal
import socket
import sys
from pathlib import Path

MARK = "PYDIST_TEST_SESSION"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if MARK not in os.environ:                  # pytest itself, started from a shell or a lab
    _port = str(_free_port())
    os.environ[MARK] = str(os.getpid())
    os.environ["PYDIST_EPMD_PORT"] = _port      # pydist nodes, and the notebooks' kernels
    os.environ["ERL_EPMD_PORT"] = _port         # erl/elixir nodes a test or notebook starts
    os.environ["PYDIST_COOKIE"] = "pydist-test-cookie"
    os.environ["PYDIST_EPMD_IDLE"] = "1"
    os.environ.pop("PYDIST_HEARTBEAT", None)
    # Started in the background of a shell without job control (`make test &`), pytest
    # inherits SIGINT ignored (POSIX), and so would every process it starts: the tests
    # that press Ctrl-C (a receive, peer.start, the lab) need Python's own handler back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
elif os.environ[MARK] != str(os.getpid()):  # a peer of the tests, importing `conftest`
    _tests = Path(__file__).resolve().parent / "tests" / "conftest.py"
    _spec = importlib.util.spec_from_file_location(__name__, _tests)
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[__name__] = _module             # what `import conftest` gives the importer
    _spec.loader.exec_module(_module)
