"""The Elixir a learner reads in the notebooks is real Elixir: every `defmodule` block
compiles with the installed `elixir`, every line typed at an `iex(...)N>` prompt parses,
and notebook 09's Elixir file compiles. (The iex lines that need the article's running
nodes are run for real only where notebook 09 runs them.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("elixir") is None,
                                reason="needs Elixir: apt-get install -y erlang-base elixir")

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PROMPT = re.compile(r"^iex\([^)]*\)\d+> ?(.*)$")

# Compiles each `module` block and parses each `line`, in one elixir process; prints
# one JSON-free line per item: "ok" or "error <message>".
CHECKER = r"""
[path] = System.argv()
for item <- File.read!(path) |> String.split("\n\u0000\n", trim: true) do
  [kind, source] = String.split(item, "\n", parts: 2)
  result =
    try do
      case kind do
        "module" -> Code.compile_string(source)
        "line" -> Code.string_to_quoted!(source)
      end
      "ok"
    rescue
      error -> "error " <> String.replace(Exception.message(error), "\n", " ")
    end
  IO.puts(result)
end
"""


def blocks(notebook) -> list[tuple[str, str]]:
    """(kind, source) of what notebook shows in ```elixir blocks of its markdown."""
    found = []
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for block in re.findall(r"```elixir\n(.*?)```", "".join(cell["source"]), re.S):
            if block.lstrip().startswith("defmodule"):
                found.append(("module", block))
            for line in block.splitlines():
                prompt = PROMPT.match(line)
                if prompt and prompt[1].strip():
                    found.append(("line", prompt[1]))
    return found


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    """Every notebook's blocks, and product_stock.ex, checked by one elixir run."""
    items = [(nb.name, kind, src) for nb in NOTEBOOKS for kind, src in blocks(nb)]
    items.append(("product_stock.ex", "module",
                  (ROOT / "notebooks" / "product_stock.ex").read_text()))
    folder = tmp_path_factory.mktemp("elixir")
    (folder / "items").write_text("\n\0\n".join(f"{kind}\n{src}" for _, kind, src in items))
    (folder / "check.exs").write_text(CHECKER)
    done = subprocess.run(["elixir", str(folder / "check.exs"), str(folder / "items")],
                          capture_output=True, text=True, timeout=120, cwd=folder)
    lines = done.stdout.splitlines()
    assert len(lines) == len(items), f"elixir stopped early:\n{done.stdout}\n{done.stderr}"
    return [(*item, verdict) for item, verdict in zip(items, lines, strict=True)]


@pytest.mark.parametrize("where", [nb.name for nb in NOTEBOOKS] + ["product_stock.ex"])
def test_the_elixir_shown_is_valid_elixir(verdicts, where):
    mine = [v for v in verdicts if v[0] == where]
    bad = [f"{kind} {src.strip()[:60]!r}: {verdict}" for _, kind, src, verdict in mine
           if verdict != "ok"]
    assert not bad, f"{where} shows Elixir that the real elixir refuses:\n" + "\n".join(bad)


def test_the_notebooks_do_show_modules_and_prompts():
    kinds = [kind for nb in NOTEBOOKS for kind, _ in blocks(nb)]
    assert kinds.count("module") >= 3 and kinds.count("line") >= 20, \
        "the block finder found too little: has the notebooks' markdown changed?"
