"""The notebooks' "Try it" checks: no Elixir twin (iex has no such cells), the course's own.

A check cell runs just after the Try it cell it checks, and must neither lie nor leave a trace:

- when the Try it cell stopped with an exception (a typo, a call that failed), the variable the
  check looks at still holds an older value: ``stopped_above()`` says so, with the exception;
- what the Try it started (a question, a monitor) may still have a reply on its way: ``drain``
  takes the messages that belong to it, so no later cell receives them by mistake, and leaves
  every other message where it is (a selective receive, as Elixir's).

    >>> from pydist.tryit import stopped_above, drain
    >>> if (problem := stopped_above()): print(problem)
    >>> drain(lambda m: type(m) is list, wait=1)
"""

from typing import Any, Callable

from ._process import receive

TRY_IT = "# Try it"          # the first line of every Try it cell
THEN_WAIT = 0.2              # seconds: a burst of replies arrives close together


def _last_run():
    """IPython's record of the cell that ran before this one (None outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return getattr(shell, "last_execution_result", None) if shell else None


def source_above() -> str:
    """The source of the cell that ran just before this one ('' if unknown)."""
    result = _last_run()
    info = getattr(result, "info", None)
    return getattr(info, "raw_cell", "") or ""


def tried() -> str:
    """The Try it cell's source, if it is the cell that ran just before this one, else ''."""
    source = source_above()
    return source if TRY_IT in source else ""


def stopped_above(advice: dict[str, str] | None = None) -> str | None:
    """What went wrong when the Try it cell ran just before this one and stopped with an
    exception: its name and message, and what to do next; ``advice`` adds the line of each
    key found in the exception's text. None when the cell ran to its end, or when the cell
    before was not a Try it cell (the check is simply run again)."""
    result = _last_run()
    if result is None or result.success or not tried():
        return None
    error = result.error_in_exec or result.error_before_exec
    what = f"{type(error).__name__}: {error}" if error is not None else "an error"
    lines = [f"not yet: the Try it cell above stopped with {what}",
             "  (so its variable still holds what it held before)"]
    lines += [f"  {line}" for key, line in (advice or {}).items() if key in what]
    lines.append("  fix that line, run the Try it cell again, then this one")
    return "\n".join(lines)


def drain(match: Callable[[Any], bool], wait: float = 0.0, then: float = THEN_WAIT) -> list:
    """Take every message for which ``match`` is true: the first may take ``wait`` seconds
    to come, each next one ``then``. Other messages stay in the mailbox, in order."""
    taken = []
    timeout = wait
    while True:
        try:
            taken.append(receive(timeout=timeout, match=match))
        except TimeoutError:
            return taken
        timeout = then
