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
    # BEGIN SOLUTION 1
    while True:
        match receive():
            case ("ask", sender, product):
                send(("server", stock_address), ("status", self()))
                products = receive(timeout=5, match=lambda m: isinstance(m, list))
                if product in products:
                    send(sender, ("print", product))
                else:
                    send(sender, ("print", f"There is no Product {product}"))
    # END SOLUTION


def show_msg(timeout: float = 2.0):
    """Task 2. Wait for a ("print", msg) message and return msg."""
    # BEGIN SOLUTION 2
    return receive(timeout=timeout,
                   match=lambda m: isinstance(m, tuple) and len(m) == 2 and m[0] == "print")[1]
    # END SOLUTION


def ask_store(store: str, product, timeout: float = 2.0):
    """Task 3. ask_store("store@vm", "puma") -> "There is no Product puma"."""
    # BEGIN SOLUTION 3
    send(("pos", store), ("ask", self(), product))
    return show_msg(timeout)
    # END SOLUTION
