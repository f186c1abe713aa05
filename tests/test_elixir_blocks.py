"""The Elixir a learner reads in the notebooks is real Elixir: every `defmodule` block
compiles with the installed `elixir`, every line typed at an `iex(...)N>` prompt parses,
and notebook 09's Elixir file compiles. (The iex lines that need the article's running
nodes are run for real only where notebook 09 runs them.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from conftest import EPMD_PORT, HOST, ROOT

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


# ---------------------------------------------------------------- running iex examples

# The iex examples that need no earlier state: the prompt's node and plain nodes it
# calls (`b`), or names that are meant not to exist. The others show a moment of the
# article's story (a node already connected, a process already registered, another
# cookie) and are checked by parsing above and by their notebook's own Python twin.
RUNNABLE = {"01_naming_nodes.ipynb": None, "02_ping_connect_list.ipynb": "Node.ping",
            "03_rpc.ipynb": None}
ABSENT = ("nothere",)                 # node names the examples mean to be down
VARIES = (":timer.tc", "#PID", "[...]")   # outputs that differ on every run

# Evaluates each line in order, as iex would (with the bindings of the lines before),
# and prints each value after a marker line.
IEX = r"""
[path] = System.argv()
File.read!(path) |> String.split("\n\u0000\n", trim: true)
|> Enum.with_index()
|> Enum.reduce([], fn {line, i}, binding ->
  {value, binding} = Code.eval_string(line, binding)
  IO.puts("<<<#{i}>>> " <> inspect(value))
  binding
end)
"""


def iex_examples() -> list[tuple[str, str, list[tuple[str, str | None]]]]:
    """(notebook, prompt's node, [(line, the value shown or None)]) per runnable block."""
    prompt = re.compile(r"^iex\(([^@)]*)@[^)]*\)\d+> ?(.*)$")
    found = []
    for nb in NOTEBOOKS:
        if nb.name not in RUNNABLE:
            continue
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for block in re.findall(r"```elixir\n(.*?)```", "".join(cell["source"]), re.S):
                steps, node = [], None
                for line in block.splitlines():
                    match = prompt.match(line)
                    if match:
                        node = match[1]
                        steps.append([match[2], []])
                    elif steps and not line.startswith("# "):      # a comment, not #PID<...>
                        steps[-1][1].append(line)
                first = RUNNABLE[nb.name]
                if steps and (first is None or steps[0][0].startswith(first)):
                    found.append((nb.name, node, [
                        (line, shown[-1] if shown and not any(v in line + shown[-1]
                                                               for v in VARIES) else None)
                        for line, shown in steps if line.strip()]))
    return found


def _elixir_node(name: str, script: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        ["elixir", "--sname", name, "--cookie", os.environ["PYDIST_COOKIE"], "--erl",
         "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false", *script],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "ERL_EPMD_PORT": str(EPMD_PORT)})


@pytest.mark.parametrize("example", iex_examples(), ids=lambda e: f"{e[0][:2]}-{e[1]}")
def test_the_iex_examples_print_what_the_notebooks_show(example, node, tmp_path):
    """Each line runs on a real node of the prompt's name (this test's node keeps the
    port mapper up); every other node the block names is started too, but ABSENT ones."""
    notebook, me, steps = example
    lines = [line.replace("@vm", f"@{HOST}") for line, _ in steps]
    others = set(re.findall(r":([a-z_]+)@", " ".join(lines))) - {me} - set(ABSENT)
    helpers = [_elixir_node(other, ["-e", "IO.puts(:up); Process.sleep(30_000)"])
               for other in sorted(others)]
    try:
        for helper in helpers:
            assert helper.stdout.readline().strip() == "up"
        (tmp_path / "lines").write_text("\n\0\n".join(lines))
        (tmp_path / "iex.exs").write_text(IEX)
        run = _elixir_node(me, [str(tmp_path / "iex.exs"), str(tmp_path / "lines")])
        out, _ = run.communicate(timeout=60)
        values = dict(re.findall(r"^<<<(\d+)>>> (.*)$", out, re.M))
        assert len(values) == len(steps), f"{notebook}: elixir stopped early:\n{out}"
        for i, (line, shown) in enumerate(steps):
            if shown is not None:
                expected = shown.replace("@vm", f"@{HOST}")
                assert values[str(i)] == expected, (
                    f"{notebook}: iex> {line}\n  the notebook shows {expected}\n"
                    f"  elixir printed {values[str(i)]}")
    finally:
        for helper in helpers:
            helper.kill()
            helper.communicate(timeout=10)


def test_the_runnable_iex_examples_are_found():
    runs = iex_examples()
    assert {nb for nb, _, _ in runs} == set(RUNNABLE), "a notebook's examples were not found"
    assert sum(shown is not None for _, _, steps in runs for _, shown in steps) >= 10
