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
    # BEGIN SOLUTION 1
    what = "added a new item on stock" if action == "add" else "checked the stock"
    return f"{pid_to_list(pid)} {what}"
    # END SOLUTION


def handle_stock(stock: list) -> None:
    """Task 2. ("add", sender, product): stock = [product] + stock, log, send(sender, stock).
    ("status", sender): log, send(sender, ("show", stock))."""
    # BEGIN SOLUTION 2
    while True:
        match receive():
            case ("add", sender, product):
                stock = [product] + stock
                print(repr(log_line(sender, "add")))
                send(sender, stock)
            case ("status", sender):
                print(repr(log_line(sender, "status")))
                send(sender, ("show", stock))
    # END SOLUTION


def ask_status(dest, timeout: float = 1.0) -> list:
    """Task 3. Send ("status", self()) to dest; return the stock from its ("show", stock)."""
    # BEGIN SOLUTION 3
    send(dest, ("status", self()))
    return receive(timeout=timeout, match=lambda m: isinstance(m, tuple) and m[0] == "show")[1]
    # END SOLUTION


def node_number(pid) -> int:
    """Task 4. node_number(<0.112.0>) -> 0; node_number(<19214.112.0>) -> 19214."""
    # BEGIN SOLUTION 4
    return int(pid_to_list(pid).strip("<>").split(".")[0])
    # END SOLUTION
