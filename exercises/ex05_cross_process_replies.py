"""Exercise 05 · Cross-process replies (notebook 05_cross_process_replies.ipynb)

Tasks
  1. log_line(pid, action): the article's log text for an "add" or a "status".
  2. handle_stock(stock): answer every caller: the new stock for "add", ("show", stock)
     for "status".
  3. ask_status(dest, timeout): ask for the stock; return the list inside ("show", stock).
  4. node_number(pid): the first number of a pid, 0 for a local one.

Check your work: python3 course.py check 05   (stuck on task 2? add --hint 2)
"""

from pydist import pid_to_list, receive, self, send


def log_line(pid, action: str) -> str:
    """Task 1. log_line(pid, "add") -> "<0.112.0> added a new item on stock";
    log_line(pid, "status") -> "<0.112.0> checked the stock"."""
    raise NotImplementedError("Task 1: not done yet (read its docstring; the checker gives hints)")


def handle_stock(stock: list) -> None:
    """Task 2. ("add", sender, product): stock = [product] + stock, log, send(sender, stock).
    ("status", sender): log, send(sender, ("show", stock))."""
    raise NotImplementedError("Task 2: not done yet (read its docstring; the checker gives hints)")


def ask_status(dest, timeout: float = 1.0) -> list:
    """Task 3. Send ("status", self()) to dest; return the stock from its ("show", stock)."""
    raise NotImplementedError("Task 3: not done yet (read its docstring; the checker gives hints)")


def node_number(pid) -> int:
    """Task 4. node_number(<0.112.0>) -> 0; node_number(<19214.112.0>) -> 19214."""
    raise NotImplementedError("Task 4: not done yet (read its docstring; the checker gives hints)")
