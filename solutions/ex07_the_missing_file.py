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
    # BEGIN SOLUTION 1
    return [data[i:i + size] for i in range(0, len(data), size)]
    # END SOLUTION


def file_server(directory: str) -> None:
    """Task 2. Serve ("get", sender, name) requests forever."""
    # BEGIN SOLUTION 2
    while True:
        match receive():
            case ("get", sender, name):
                path = Path(directory) / name
                if not path.is_file():
                    send(sender, ("missing", name))
                    continue
                data = path.read_bytes()
                send(sender, ("size", len(data)))
                for piece in chunks(data):
                    send(sender, ("chunk", piece))
                send(sender, ("eof",))
    # END SOLUTION


def fetch(owner: str, name: str, dest: str, timeout: float = 5.0) -> int:
    """Task 3. Copy `name` from ("files", owner) into the file `dest`; return its size."""
    # BEGIN SOLUTION 3
    send(("files", owner), ("get", self(), name))
    first = receive(timeout=timeout)
    if first[0] == "missing":
        raise FileNotFoundError(f"{name} is not on {owner}")
    written = 0
    with open(dest, "wb") as f:
        while (msg := receive(timeout=timeout))[0] == "chunk":
            f.write(msg[1])
            written += len(msg[1])
    return written
    # END SOLUTION
