"""``circuit-inspector export RUN --format F --out OUT [options]``: the headless exporter.

The options are ``circuit-engine export``'s (:func:`engine.scene.export.add_export_arguments`); the
view is built without a window by :func:`engine.scene.headless.headless_snapshot` (the window's own
loader: same layouts, labels and the 24 held-out pairs behind the metrics; a session file's view
range, ablations and selection; ``--view``, ``--mode``, ``--ablate``) and written by
:func:`app.export.write.write_snapshot`, the code behind the window's File > Export, so the same
session at the same size gives the same picture. Qt is imported only for png and svg (offscreen).
Prints one line (one JSON object with ``--json``); a user error prints ``error: ...`` and exits 2.
"""

from __future__ import annotations

import json
import os
import sys

_QT_APP = []  # the headless QGuiApplication, kept alive


def _gui_app():
    """A QGuiApplication for rendering offscreen; UserError if the gui extra is missing."""
    from engine.errors import UserError
    from engine.scene.export import GUI_EXTRA_MESSAGE

    try:
        import pyqtgraph  # noqa: F401  (the renderer reads the view's edge styles)
        from PySide6 import QtSvg  # noqa: F401
        from PySide6.QtGui import QGuiApplication
    except ImportError:
        raise UserError(GUI_EXTRA_MESSAGE) from None
    app = QGuiApplication.instance()
    if app is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # chosen when the application starts: no display needed
        app = QGuiApplication(["circuit-inspector-export"])
    _QT_APP.append(app)
    return app


def main(argv: list[str] | None = None) -> int:
    """Parse the export options, build the view headless and write it; returns the exit status."""
    from engine.errors import OneLineArgumentParser, UserError
    from engine.scene.export import DEFAULT_SIZE, IMAGE_FORMATS, add_export_arguments, check_image_size, check_output
    from engine.scene.headless import describe_export, export_result, headless_snapshot

    parser = OneLineArgumentParser(prog="circuit-inspector export",
                     description="Export a circuit view as the app draws it: png, svg, graphml, json or csv.")
    add_export_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, one line already printed)
        return int(exc.code or 0)
    try:
        check_output(args.out, args.format)  # before loading anything
        if args.format in IMAGE_FORMATS:
            check_image_size(args.size or DEFAULT_SIZE, args.scale)
            _gui_app()
        from app.export.write import write_snapshot

        snap = headless_snapshot(args)
        paths = write_snapshot(snap, args.format, args.out, args.scale)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = export_result(snap, args, paths)
    print(json.dumps(result) if args.json else describe_export(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
