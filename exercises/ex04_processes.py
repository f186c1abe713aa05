"""Exercise 04 · Processes (notebook 04_processes.ipynb)

Tasks
  1. counter(): a process that counts "inc" messages and answers ("get", sender).
  2. handle_stock(stock): the article's ProductStock loop, answering ("status", sender).
  3. start_stock(name): spawn handle_stock with an empty stock and register it as `name`.
  4. stock_of(dest, timeout): ask a stock process for its stock and return the answer.

Check your work: python3 course.py check 04   (stuck on task 2? add --hint 2)
"""

from pydist import Process, receive, self, send, spawn


def counter() -> None:
    """Task 1. Starts at 0; "inc" adds one; ("get", sender) sends the count to sender."""
    raise NotImplementedError("Task 1: not done yet (read its docstring; the checker gives hints)")


def handle_stock(stock: list) -> None:
    """Task 2. ("add", product) puts product in front of the stock;
    ("status", sender) sends the stock (a list) to sender."""
    raise NotImplementedError("Task 2: not done yet (read its docstring; the checker gives hints)")


def start_stock(name: str):
    """Task 3. Returns the pid of a new handle_stock([]) process registered as `name`."""
    raise NotImplementedError("Task 3: not done yet (read its docstring; the checker gives hints)")


def stock_of(dest, timeout: float = 1.0) -> list:
    """Task 4. stock_of("product_stock") -> [{"name": "nike", "qty": 30}, ...]"""
    raise NotImplementedError("Task 4: not done yet (read its docstring; the checker gives hints)")
