"""The one exception type for errors a user can cause.

A bad file, a bad config value, an unknown task or preset, a run folder in the wrong state: all raise
:class:`UserError` with a message that says what to do. The CLI prints it as one ``error: ...`` line
and exits 2; the app shows it in a dialog. Anything else that escapes is a bug.
:class:`OneLineArgumentParser` reports a mistake on the command line the same way.
"""

import argparse
from typing import Any, NoReturn


class CircuitInspectorError(Exception):
    """A problem the user can fix; the message says how."""


UserError = CircuitInspectorError


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser for the project's commands (``circuit-engine``, ``circuit-inspector``):
    a usage error is one ``error: ...`` line and exit status 2 (argparse prints the whole usage
    first), and options are never abbreviated (``--token`` is not ``--tokens``: a typo must not pass
    as an option). Subparsers take this class with ``add_subparsers(parser_class=...)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")
