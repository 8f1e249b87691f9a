"""Engine jobs are generators of progress events that return their result (docs/architecture.md, "Threads"): the
CLI prints the events, the app runs the same generator in a worker thread, and code that only wants
the result drives it here. Knows nothing about what the jobs do.
"""

from __future__ import annotations

from typing import Any, Callable, Generator


def run_to_end(gen: Generator[Any, None, Any], on_event: Callable[[Any], None] | None = None) -> Any:
    """Drive an engine job generator (training, pruning, recording, means) to its return value."""
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(ev)
