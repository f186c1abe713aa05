"""Exercise 06 · The stock central (notebook 06_stock_central.ipynb)

A stock server runs on node `stock_address`, registered as "server": it answers
("status", sender) with the stock, a list of products.

Tasks
  1. pos_ask(stock_address): the article's Pos loop.
  2. show_msg(timeout): the article's Pos.show_msg.
  3. ask_store(store, product, timeout): what a customer does, end to end.

Check your work: python3 course.py check 06   (stuck on task 2? add --hint 2)
"""

from pydist import receive, self, send


def pos_ask(stock_address: str) -> None:
    """Task 1. Serve ("ask", sender, product) messages forever.

    While it waits for the stock, another customer's question may arrive first:
    take only the stock (a list), and leave the question for the next round.
    """
    raise NotImplementedError("Task 1: not done yet (read its docstring; the checker gives hints)")


def show_msg(timeout: float = 2.0):
    """Task 2. Wait for a ("print", msg) message and return msg."""
    raise NotImplementedError("Task 2: not done yet (read its docstring; the checker gives hints)")


def ask_store(store: str, product, timeout: float = 2.0):
    """Task 3. ask_store("store@vm", "puma") -> "There is no Product puma"."""
    raise NotImplementedError("Task 3: not done yet (read its docstring; the checker gives hints)")
