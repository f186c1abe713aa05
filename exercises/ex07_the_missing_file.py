"""Exercise 07 · The missing file (notebook 07_the_missing_file.ipynb)

Tasks
  1. chunks(data, size): cut bytes into pieces of at most `size` bytes.
  2. file_server(directory): serve the files of `directory` to whoever asks.
  3. fetch(owner, name, dest, timeout): copy file `name` from the "files" server on `owner`.

Check your work: python3 course.py check 07   (stuck on task 2? add --hint 2)
"""

from pathlib import Path

from pydist import receive, self, send

CHUNK = 64 * 1024


def chunks(data: bytes, size: int = CHUNK) -> list[bytes]:
    """Task 1. chunks(b"abcde", 2) -> [b"ab", b"cd", b"e"]; chunks(b"", 2) -> []."""
    raise NotImplementedError("Task 1: not done yet (read its docstring; the checker gives hints)")


def file_server(directory: str) -> None:
    """Task 2. Serve ("get", sender, name) requests forever."""
    raise NotImplementedError("Task 2: not done yet (read its docstring; the checker gives hints)")


def fetch(owner: str, name: str, dest: str, timeout: float = 5.0) -> int:
    """Task 3. Copy `name` from ("files", owner) into the file `dest`; return its size."""
    raise NotImplementedError("Task 3: not done yet (read its docstring; the checker gives hints)")
