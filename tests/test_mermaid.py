"""Every ```mermaid block of the course (notebooks' markdown, README and other .md files)
is read by Mermaid's own parser, the one GitHub and JupyterLab render with: a block it
cannot parse shows up as raw source (as 03's node id `call`, a keyword, once did).

Mermaid is a JavaScript package: the first run installs it (and jsdom, the browser window
its sanitizer needs) with npm into tests/mermaid/node_modules (git-ignored), at the versions
tests/mermaid/package.json pins. Without node and npm the test is skipped, saying how to
install them (on CI, `CI` set, it fails instead).
"""

import json
import os
import re
import shutil
import subprocess

import pytest
from conftest import ROOT

HERE = ROOT / "tests" / "mermaid"
BLOCK = re.compile(r"^```mermaid[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
INSTALL_TIMEOUT = 300          # seconds: npm fetching ~150 packages on a slow network
PARSE_TIMEOUT = 60


def _markdown_sources():
    """(where, text) of every markdown the course shows: notebook cells and .md files."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "markdown":
                yield f"{path.relative_to(ROOT)}, cell {cell.get('id', i)}", "".join(cell["source"])
    for path in sorted(ROOT.rglob("*.md")):
        parts = path.relative_to(ROOT).parts
        if any(p.startswith(".") or p in ("node_modules", "build", "dist") for p in parts):
            continue
        yield str(path.relative_to(ROOT)), path.read_text()


def mermaid_blocks() -> list[dict]:
    blocks = []
    for where, text in _markdown_sources():
        for n, found in enumerate(BLOCK.finditer(text), 1):
            blocks.append({"where": f"{where}, diagram {n}", "source": found[1]})
    return blocks


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        why = f"needs {tool} for Mermaid's parser: apt-get install -y nodejs npm (or nodejs.org)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return path


def _installed(package: str) -> str | None:
    path = HERE / "node_modules" / package / "package.json"
    return json.loads(path.read_text())["version"] if path.exists() else None


@pytest.fixture(scope="module")
def parser():
    """The command that parses blocks, Mermaid installed first if it is not yet."""
    node, npm = _need("node"), _need("npm")
    wanted = json.loads((HERE / "package.json").read_text())["dependencies"]
    if any(_installed(name) != version for name, version in wanted.items()):
        # `npm ci`: the versions package-lock.json pins, each weeks old; a fresh resolve
        # once met a package published a minute before its own dependency was
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=HERE, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        assert r.returncode == 0, f"npm could not install {wanted} into {HERE}/node_modules " \
                                  f"(is the npm registry reachable?):\n{r.stdout}{r.stderr}"
    return [node, str(HERE / "parse.mjs")]


def parse(parser, blocks: list[dict]) -> list[dict]:
    r = subprocess.run(parser, input=json.dumps(blocks), cwd=HERE, capture_output=True,
                       text=True, timeout=PARSE_TIMEOUT)
    assert r.returncode == 0, f"Mermaid's parser did not run:\n{r.stderr}"
    return json.loads(r.stdout)


def test_the_course_has_mermaid_diagrams():
    """Guards the pattern: if it stopped finding blocks, the next test would pass on nothing."""
    found = {b["where"].split(",")[0] for b in mermaid_blocks()}
    assert len(found) >= 9, f"expected a diagram in each of the 9 notebooks, found them in {found}"


def test_every_mermaid_block_parses(parser):
    blocks = mermaid_blocks()
    results = parse(parser, blocks)
    assert len(results) == len(blocks)
    bad = [f"{r['where']}: {r['error']}\n{b['source']}"
           for r, b in zip(results, blocks, strict=True) if not r["ok"]]
    assert not bad, "Mermaid cannot parse these diagrams (they would show as raw source):\n\n" + \
                    "\n\n".join(bad)


def test_a_broken_diagram_fails(parser):
    """The parser really judges: the keyword `call` as a node id (03's old bug) and a dangling
    arrow are refused, the same diagram with a plain id is read."""
    results = parse(parser, [
        {"where": "keyword id", "source": "flowchart LR\n  call --> b\n"},
        {"where": "dangling arrow", "source": "flowchart LR\n  a -->\n"},
        {"where": "fine", "source": "flowchart LR\n  caller --> b\n"},
    ])
    assert [r["ok"] for r in results] == [False, False, True], results
    assert "Parse error" in results[0]["error"], results[0]
