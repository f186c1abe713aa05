"""The notebooks as a learner uses them: several open at once, each with its own "Try it"."""

import json
import re
from collections import defaultdict

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# Node.start("gus", ...), Node.start("gus@127.0.0.1"), peer.start("b"): the name before any "@"
STARTED = re.compile(r"""\b(?:Node|peer)\.start\(\s*f?["']([A-Za-z0-9_-]+)""")


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _node_names(path) -> set[str]:
    code = "\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "code")
    return set(STARTED.findall(code))


def test_no_two_notebooks_start_a_node_of_the_same_name():
    """Two notebooks open at once are two kernels on one host: a name both start is taken
    by whichever ran first, and the other fails with "the name ... is already taken"."""
    users = defaultdict(list)
    for path in NOTEBOOKS:
        names = _node_names(path)
        assert names, f"{path.name}: no Node.start or peer.start found (has this test's pattern " \
                      f"gone out of date?)"
        for name in names:
            users[name].append(path.name)
    clashes = {name: books for name, books in users.items() if len(books) > 1}
    assert not clashes, "\n".join(
        f"node name {name!r} is started by {' and '.join(books)}: with two of them open, "
        f"the second fails with \"the name {name!r} is already taken on this host\"; give each "
        f"notebook names of its own" for name, books in sorted(clashes.items()))


def test_every_notebook_has_a_try_it_between_its_sections():
    for path in NOTEBOOKS:
        cells = _cells(path)
        ids = [c.get("id", "") for c in cells]
        nn = path.name[:2]
        assert f"{nn}-try" in ids, f"{path.name}: no \"Try it\" cell (id {nn}-try)"
        at = ids.index(f"{nn}-try")
        text = "".join(cells[at]["source"])
        assert text.startswith("### Try it") and "<details>" in text, \
            f"{path.name}: a Try it starts with '### Try it' and hides its answer in <details>"
        task, check = cells[at + 1], cells[at + 2]
        assert "..." in "".join(task["source"]), f"{path.name}: the Try it cell has no ... to fill"
        assert "not yet" in "".join(check["source"]), \
            f"{path.name}: the cell after a Try it checks it (and says 'not yet' at first)"
        assert at < ids.index(f"{nn}-turn"), f"{path.name}: the Try it comes before 'Your turn'"


def test_no_stored_output_holds_an_absolute_path():
    """A stored output is what every learner sees: a build machine's folder has no place there."""
    absolute = re.compile(r"(?<![\w.~])/(?:home|root|work|Users|usr|opt|srv|mnt|var)/[\w.-]+")
    for path in NOTEBOOKS:
        for cell in _cells(path):
            for out in cell.get("outputs", []):
                text = json.dumps(out)
                found = absolute.search(text)
                assert not found, f"{path.name}, cell {cell.get('id')}: stored output holds " \
                                  f"the absolute path {found[0]!r}; re-run it so it shows a " \
                                  f"relative one"
