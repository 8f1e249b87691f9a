"""Writing a :class:`engine.scene.snapshot.ViewSnapshot` in any export format: pictures (PNG at a
scale, SVG) drawn by :mod:`app.export.render`, data (GraphML, JSON, CSV: two tables) written
atomically by ``engine.scene.export``. A path that cannot be written is an engine ``UserError``
raised before anything is rendered, and nothing is half-written.

The window's File > Export (:mod:`app.window.export`) and the headless ``circuit-inspector
export`` (:mod:`app.export.command`) both write through :func:`write_snapshot`, so with the same
session and size they give the same picture.
"""

from __future__ import annotations

from pathlib import Path

from engine.scene.snapshot import ViewSnapshot, view_document


# ---------------------------------------------------------------------------------------------
# Writing a snapshot (window and headless)


def write_snapshot(snap: ViewSnapshot, fmt: str, out: Path | str, scale: float = 1.0) -> list[Path]:
    """Write ``snap`` as ``fmt`` to ``out`` (csv: two files); raises engine UserError."""
    from engine import api

    if fmt not in api.EXPORT_IMAGE_FORMATS:
        return api.write_view(view_document(snap), fmt, out)
    api.check_output(out, fmt)  # before the work of rendering
    api.check_image_size(snap.size, scale)
    from app.export.render import png_bytes, rasterise, render_svg

    svg = render_svg(snap)
    return api.write_image(svg if fmt == "svg" else png_bytes(rasterise(svg, snap.size, scale)), fmt, out)
