"""Live training curves: train and validation loss, held-out task losses, weight density and lr.

Smooth over any run length: each series is a :class:`CurveBuffer`, a preallocated numpy array of at
most ``capacity`` points. When it fills up, neighbouring points are averaged pairwise and from then
on ``stride`` incoming values make one stored point, so a million-step run draws as cheaply as a
thousand-step one and keeps its shape. :class:`TrainCurves` holds one pyqtgraph ``PlotDataItem`` per
series, fed with ``setData`` from those arrays by a single-shot timer (at most ``REDRAW_HZ`` redraws a
second however fast events arrive). Knows nothing about jobs or the engine: it is fed
:meth:`TrainCurves.add_point` records (from live events or from a run's ``train_log.jsonl``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QWidget

from app.widgets import theme

REDRAW_HZ = 4
CAPACITY = 1024
PALETTE = ("#5aa9e6", "#f2c14e", "#7bd389", "#c792ea", "#ef8354", "#4fd1c5", "#ff6b6b", "#d5d9e3")
# plot name -> its title; each series below names the plot it is drawn in
PLOTS = {"loss": "loss (nats/token)", "tasks": "held-out task loss", "density": "weight density",
         "lr": "learning rate"}
DENSITY_SERIES = {"matrices": "matrices", "embed": "embedding"}


class CurveBuffer:
    """A bounded (x, y) series: at most ``capacity`` stored points plus the pending partial one."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 2 or capacity % 2:
            raise ValueError("capacity must be an even number >= 2")
        self.capacity = capacity
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self._n = 0
        self.stride = 1  # incoming values per stored point
        self._acc = [0.0, 0.0, 0]  # sum x, sum y, count of the pending point
        self.received = 0  # values appended since the last clear

    def append(self, x: float, y: float) -> None:
        self.received += 1
        acc = self._acc
        acc[0] += x
        acc[1] += y
        acc[2] += 1
        if acc[2] == self.stride:
            if self._n == self.capacity:
                self._halve()
            self._x[self._n], self._y[self._n] = acc[0] / acc[2], acc[1] / acc[2]
            self._n += 1
            self._acc = [0.0, 0.0, 0]

    def _halve(self) -> None:
        half = self._n // 2
        self._x[:half] = self._x[: 2 * half].reshape(half, 2).mean(axis=1)
        self._y[:half] = self._y[: 2 * half].reshape(half, 2).mean(axis=1)
        self._n = half
        self.stride *= 2

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the stored points, plus the mean of the pending ones as a last point."""
        x, y = self._x[: self._n], self._y[: self._n]
        n_acc = self._acc[2]
        if n_acc:
            x = np.append(x, self._acc[0] / n_acc)
            y = np.append(y, self._acc[1] / n_acc)
            return x, y
        return x.copy(), y.copy()

    def clear(self) -> None:
        self._n, self.stride, self._acc, self.received = 0, 1, [0.0, 0.0, 0], 0


def _show_axes(plot: pg.PlotItem, on: bool) -> None:
    """A plot's axes and grid: shown once it has something to draw."""
    for axis in ("left", "bottom"):
        plot.showAxis(axis, on)
    plot.showGrid(x=on, y=on, alpha=0.15)


class TrainCurves(pg.GraphicsLayoutWidget):
    """Four small plots (loss, task losses, density, lr) against the training step."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground(theme.BG)
        self.setMinimumHeight(260)
        self.plots: dict[str, pg.PlotItem] = {}
        self.legends: dict[str, pg.LegendItem] = {}
        for i, (name, title) in enumerate(PLOTS.items()):
            plot = self.addPlot(row=i // 2, col=i % 2, title=f"<span style='color:{theme.MUTED}'>{title}</span>")
            plot.setLabel("bottom", "step")
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setTextPen(pg.mkPen(theme.MUTED))
            if name in ("loss", "tasks", "density"):
                self.legends[name] = plot.addLegend(offset=(-6, 6), labelTextColor=theme.MUTED)
            self.plots[name] = plot
            _show_axes(plot, False)  # no 0-1 axes until the plot has a curve
        self.buffers: dict[str, CurveBuffer] = {}
        self.items: dict[str, pg.PlotDataItem] = {}
        self._dirty: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(1000 // REDRAW_HZ)
        self._timer.timeout.connect(self.redraw)
        self.redraws = 0  # for tests and benchmarks

    def _series(self, key: str, plot: str, label: str) -> CurveBuffer:
        buf = self.buffers.get(key)
        if buf is None:
            buf = self.buffers[key] = CurveBuffer()
            n_in_plot = sum(1 for k in self.items if k.split(":", 1)[0] == plot)
            dashed = key == "loss:val"
            pen = pg.mkPen(PALETTE[n_in_plot % len(PALETTE)], width=2 if dashed else 1.5)
            item = pg.PlotDataItem(pen=pen, name=label, symbol="o" if dashed else None, symbolSize=4,
                                   symbolBrush=PALETTE[n_in_plot % len(PALETTE)], symbolPen=None)
            self.plots[plot].addItem(item)
            _show_axes(self.plots[plot], True)
            self.items[key] = item
        return buf

    def add_point(self, step: int, train_loss: float | None = None, val_loss: float | None = None,
                  lr: float | None = None, density: Mapping[str, float] | None = None,
                  task_losses: Mapping[str, float] | None = None) -> None:
        """Record what one progress report says about ``step``; ``None`` means "not reported"."""
        values: list[tuple[str, str, str, float | None]] = [
            ("loss:train", "loss", "train", train_loss), ("loss:val", "loss", "validation", val_loss),
            ("lr:lr", "lr", "lr", lr)]
        for kind, label in DENSITY_SERIES.items():
            values.append((f"density:{kind}", "density", label, (density or {}).get(kind)))
        for task, loss in (task_losses or {}).items():
            values.append((f"tasks:{task}", "tasks", task, loss))
        for key, plot, label, value in values:
            if value is None or not math.isfinite(value):
                continue
            self._series(key, plot, label).append(float(step), float(value))
            self._dirty.add(key)
        if self._dirty and not self._timer.isActive():
            self._timer.start()

    def add_log_record(self, record: Mapping) -> None:
        """A ``train_log.jsonl`` entry (what :meth:`TrainEvent.to_dict` wrote)."""
        kind = record.get("kind")
        if kind not in ("step", "eval"):
            return
        self.add_point(int(record.get("step", 0)), record.get("train_loss"), record.get("val_loss"),
                       record.get("lr"), record.get("density"), record.get("task_losses"))

    @Slot()
    def redraw(self) -> None:
        """Push the changed series to their plot items (one ``setData`` per changed curve)."""
        for key in self._dirty:
            x, y = self.buffers[key].arrays()
            self.items[key].setData(x, y)
        self._dirty.clear()
        self.redraws += 1

    def reset(self) -> None:
        """Remove every series (not ``clear``: GraphicsLayoutWidget binds that name per instance)."""
        self._timer.stop()
        self._dirty.clear()
        for key, item in self.items.items():
            self.plots[key.split(":", 1)[0]].removeItem(item)
            legend = self.legends.get(key.split(":", 1)[0])
            if legend is not None:
                legend.removeItem(item)
        self.items.clear()
        self.buffers.clear()
        for plot in self.plots.values():
            _show_axes(plot, False)

    @property
    def pending(self) -> bool:
        """Whether some series changed since the last redraw (the timer will draw it)."""
        return bool(self._dirty)

    def point_count(self, key: str) -> int:
        """Points the plot item of series ``key`` (e.g. ``"loss:train"``) currently draws."""
        item = self.items.get(key)
        if item is None:
            return 0
        x, _ = item.getData()
        return 0 if x is None else len(x)
