"""What the notebooks say the article's Elixir does, run with the real `elixir`: the code is
taken from the notebooks' own ```elixir blocks (04's ProductStock, 06's Pos) and from
notebooks/product_stock.ex, so a notebook that changes its Elixir changes what is run here.

- 04: a message that no clause of the loop matches stays in the mailbox (Python's
  `match receive():` takes it and drops it: the notebook says so);
- 06: a question for a map the stock lacks crashes Pos with Protocol.UndefinedError (String.Chars),
  `Process.whereis(:pos)` is nil and the customer gets no answer;
- 06: a question that is not a tuple of three stays in Pos's mailbox;
- 06: two customers at once: Pos's `return_itens` takes the second question as the stock,
  `Enum.find` on a tuple raises Protocol.UndefinedError (Enumerable), Pos dies, neither customer
  is answered.
"""

import json
import re
import shutil
import subprocess

import pytest
from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("elixir") is None,
                                reason="needs Elixir: apt-get install -y erlang-base elixir")

CLAIMS = r"""
[ps04, pos, stock] = System.argv()
for file <- [ps04, pos, stock], do: Code.compile_file(file)
report = fn key, value -> IO.puts("RESULT #{key} #{inspect(value)}") end
down = fn pid ->
  ref = Process.monitor(pid)
  receive do
    {:DOWN, ^ref, :process, _, reason} -> reason
  after
    2000 -> :still_alive
  end
end
answer = fn ->
  receive do
    {:print, msg} -> msg
  after
    1000 -> :no_answer
  end
end

# 04: a message that no clause of the loop matches stays in its mailbox
pid = spawn(ProductStock04, :handle_stock, [[]])
send(pid, :unknown_message)
send(pid, {:add, %{name: "nike", qty: 30}})
Process.sleep(200)
report.("unmatched", Process.info(pid, :messages))

# the central stock of 06/09, with nike and adidas
server = spawn(ProductStock, :handle_stock, [[]])
Process.register(server, :server)
for p <- [%{name: "nike", qty: 30}, %{name: "adidas", qty: 35}] do
  send(server, {:add, self(), p})
  receive do
    list when is_list(list) -> list
  end
end

# 06: a question for a map the stock lacks crashes Pos: interpolating a map
pos = spawn(Pos, :ask, [node()])
Process.register(pos, :pos)
send(:pos, {:ask, self(), %{name: "puma", qty: 1}})
reason = down.(pos)
report.("map_reason", elem(reason, 0).__struct__)
report.("map_message", Exception.message(elem(reason, 0)))
report.("map_whereis", Process.whereis(:pos))
report.("map_answer", answer.())

# 06: a question that is not a tuple of three stays in Pos's mailbox
pos = spawn(Pos, :ask, [node()])
send(pos, {:ask, "reebok"})
Process.sleep(200)
report.("short_question", Process.info(pos, :messages))
Process.exit(pos, :kill)

# 06: two customers at once, both questions queued before Pos starts serving
busy = spawn(fn -> receive do :open -> Pos.ask(node()) end end)
me = self()
send(busy, {:ask, me, %{name: "nike", qty: 30}})
spawn(fn ->
  send(busy, {:ask, self(), "puma"})
  got = receive do
    {:print, msg} -> msg
  after
    1000 -> :no_answer
  end
  send(me, {:customer2, got})
end)
Stream.repeatedly(fn -> Process.info(busy, :message_queue_len) end)
|> Enum.find(fn {:message_queue_len, n} -> n >= 2 end)
ref = Process.monitor(busy)
send(busy, :open)
reason = receive do
  {:DOWN, ^ref, :process, _, reason} -> reason
after
  2000 -> :still_alive
end
report.("two_reason", elem(reason, 0).__struct__)
report.("two_message", Exception.message(elem(reason, 0)))
report.("two_customer1", answer.())
report.("two_customer2", receive do {:customer2, got} -> got after 2000 -> :no_report end)
"""


def _elixir_block(notebook: str, cell_id: str, starts: str) -> str:
    cells = json.loads((ROOT / "notebooks" / notebook).read_text())["cells"]
    source = "".join(next(c for c in cells if c.get("id") == cell_id)["source"])
    for block in re.findall(r"```elixir\n(.*?)```", source, re.S):
        if block.lstrip().startswith(starts):
            return block
    raise AssertionError(f"{notebook}, cell {cell_id}: no ```elixir block starting {starts!r}")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, str]:
    here = tmp_path_factory.mktemp("article")
    ps04 = _elixir_block("04_processes.ipynb", "04-06", "defmodule ProductStock")
    ps04 = ps04.replace("defmodule ProductStock", "defmodule ProductStock04", 1)
    (here / "ps04.ex").write_text(ps04)
    (here / "pos.ex").write_text(_elixir_block("06_stock_central.ipynb", "06-04", "defmodule Pos"))
    (here / "claims.exs").write_text(CLAIMS)
    r = subprocess.run(["elixir", "claims.exs", "ps04.ex", "pos.ex",
                        str(ROOT / "notebooks" / "product_stock.ex")],
                       cwd=here, capture_output=True, text=True, timeout=60)
    found = dict(line.split(" ", 2)[1:] for line in r.stdout.splitlines()
                 if line.startswith("RESULT "))
    assert r.returncode == 0 and len(found) == 10, \
        f"the Elixir run did not finish:\n{r.stdout}{r.stderr}"
    return found


def test_04_an_unmatched_message_stays_in_the_mailbox(results):
    assert results["unmatched"] == "{:messages, [:unknown_message]}"


def test_06_a_map_question_crashes_pos_and_nobody_answers(results):
    assert results["map_reason"] == "Protocol.UndefinedError"
    assert "String.Chars not implemented" in results["map_message"]
    assert results["map_whereis"] == "nil"
    assert results["map_answer"] == ":no_answer"


def test_06_a_question_of_two_items_stays_in_pos_mailbox(results):
    assert results["short_question"] == '{:messages, [ask: "reebok"]}'


def test_06_two_customers_crash_the_article_pos_and_neither_is_answered(results):
    assert results["two_reason"] == "Protocol.UndefinedError"
    message = results["two_message"]
    assert re.fullmatch(r'"protocol Enumerable not implemented for \{:ask, #PID<[\d.]+>, '
                        r'\\"puma\\"\} of type Tuple"', message), message
    assert results["two_customer1"] == ":no_answer"
    assert results["two_customer2"] == ":no_answer"
