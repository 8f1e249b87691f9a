"""Colours and the dark application palette. Knows nothing about runs or the engine."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QFontDatabase, QPalette
from PySide6.QtWidgets import QApplication

BG = "#1e1f24"  # graph background
PANEL = "#26282f"  # widget background
BASE = "#1b1c21"  # text fields, lists
GRID = "#2c2e36"
TEXT = "#c8ccd8"
MUTED = "#7d8294"
ACCENT = "#5aa9e6"
POS = (239, 131, 84)  # positive weight (coral)
NEG = (77, 163, 255)  # negative weight (blue)
ABLATED = "#ff4d6d"
SELECTED = "#ffffff"
GOOD = "#7bd389"
BAD = "#ff6b6b"
RESIDUAL_LINK = (120, 126, 145, 70)
QK_LINK = (242, 193, 78, 200)  # a query and its key (the query's gold): dotted arcs, not weights
HEAT = (255, 196, 61)  # an unsigned node overlay at full strength (app/graph/node_style.py)
# A diff of two circuits (engine.scene.focus.DIFF_SIDES order: in both, only in A, only in B): nodes and
# weights in both in a neutral grey, A's own in orange, B's own in cyan (apart for colour-blind eyes too)
DIFF_COLORS = ((200, 204, 216), (255, 159, 28), (0, 187, 249))
DIM_EDGE_ALPHA = 26  # weights outside a focus: faint context

# Node colours per site kind (engine.scene.layout.KINDS order: the block sites, then final_resid):
# residual reads/writes in cool greys, q/k/v in warm-to-green hues, neurons violet, the final
# residual a warm grey.
KIND_COLORS = ("#8fa3c7", "#f2c14e", "#b8e986", "#4fd1c5", "#d5d9e3", "#8fa3c7", "#c792ea", "#d5d9e3", "#e3cfa8")
KIND_NAMES = ("attention read", "query", "key", "value", "attention write", "MLP read", "MLP neuron",
              "MLP write", "final residual")


def weight_color(sign_positive: bool, alpha: int) -> QColor:
    r, g, b = POS if sign_positive else NEG
    return QColor(r, g, b, alpha)


def mono_font(point_size: float | None = None) -> QFont:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    if point_size is not None:
        font.setPointSizeF(point_size)
    return font


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style with a dark palette, so docks match the dark graph."""
    app.setStyle("Fusion")
    pal = QPalette()
    colors = {
        QPalette.ColorRole.Window: PANEL, QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE, QPalette.ColorRole.AlternateBase: "#23252b",
        QPalette.ColorRole.ToolTipBase: "#2d3039", QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT, QPalette.ColorRole.Button: "#2d3039",
        QPalette.ColorRole.ButtonText: TEXT, QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: "#3d6a99", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT, QPalette.ColorRole.PlaceholderText: MUTED,
        QPalette.ColorRole.Mid: "#3a3d46", QPalette.ColorRole.Dark: "#15161a",
        QPalette.ColorRole.Light: "#3a3d46",
    }
    for role, color in colors.items():
        pal.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(MUTED))
    app.setPalette(pal)
    app.setStyleSheet(
        "QDockWidget::title { background: #2d3039; padding: 4px 6px; }"
        "QToolTip { color: #e6e8ef; background: #2d3039; border: 1px solid #4a4e5a; }"
        "QToolBar { spacing: 6px; border: 0; padding: 2px 4px; }"
    )
