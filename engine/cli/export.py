"""``circuit-engine export``: a circuit view (or the whole model) as GraphML, JSON or CSV, built
without Qt exactly as the window would show it (:mod:`engine.scene.headless`). Pictures are the
desktop app's: ``--format png|svg`` says in one line to run ``circuit-inspector export`` with the
same options (the engine never launches app code; docs/architecture.md, "Layers").
"""

from __future__ import annotations

import argparse
from typing import Any

from engine.errors import UserError
from engine.scene.export import IMAGE_FORMATS, add_export_arguments, check_output, write_view

PICTURES_MESSAGE = ("{fmt} pictures are drawn by the desktop app: run `circuit-inspector export` with the same "
                    "options (needs the gui extra: pip install 'circuit-inspector[gui]'); circuit-engine export "
                    "writes graphml, json and csv")


def cmd_export(args: argparse.Namespace) -> dict[str, Any]:
    """Check the output, build the view headless, write it; return what was written."""
    if args.format in IMAGE_FORMATS:
        raise UserError(PICTURES_MESSAGE.format(fmt=args.format))
    check_output(args.out, args.format)
    from engine.scene.headless import export_result, headless_snapshot
    from engine.scene.snapshot import view_document

    snap = headless_snapshot(args)
    return export_result(snap, args, write_view(view_document(snap), args.format, args.out))


def _print_export(result: dict[str, Any]) -> None:
    from engine.scene.headless import describe_export

    print(describe_export(result))


def register(sub) -> None:
    """Add ``export`` to the CLI's subcommands."""
    e = sub.add_parser("export", help="export a circuit view as graphml, json or csv (png/svg: circuit-inspector export)")
    add_export_arguments(e)
    e.set_defaults(func=cmd_export, printer=_print_export)
