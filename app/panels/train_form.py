"""The training config form: preset, model shape, sparsity, steps, lr, tokenizer, corpus and output.

Plain widgets that hold flat values (:data:`FIELDS`); they never judge them. :func:`config_values` and
:func:`config_patch` translate between a RunConfig and those values. The training panel turns
:meth:`ConfigForm.values` into a config, lets the engine validate it and shows the engine's message
with :meth:`ConfigForm.set_message`, next to the fields. Spin boxes allow values the engine rejects
(a width that is not a multiple of the head size, density 0) on purpose: the engine is the one place
that decides, and its message says what to do. Knows nothing about the engine or jobs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSpinBox, QWidget)

from app.widgets import dialogs

from app.widgets import theme

#: name -> (label, tooltip). Numbers are spin boxes, ``tokenizer`` a combo, flags check boxes.
FIELDS: dict[str, tuple[str, str]] = {
    "n_layer": ("Layers", "Transformer blocks"),
    "d_model": ("Width (d_model)", "Residual stream width; a multiple of the head size (16)"),
    "d_mlp": ("MLP width (d_mlp)", "Neurons per MLP layer (usually 4 x d_model)"),
    "density": ("Weight density", "Fraction of each weight matrix kept nonzero (1/16 = 0.0625)"),
    "afrac": ("Activation sparsity", "AbsTopK: fraction of each activation vector kept (1 = off)"),
    "steps": ("Steps", "Optimizer steps"),
    "lr": ("Learning rate", "Peak learning rate before the sharkfin factor"),
    "tokenizer": ("Tokenizer", "char: printable ASCII, no training; bpe: trained on the corpus"),
    "attn_sink": ("Attention sinks", "A learnable always-visible empty key slot per head"),
    "pos_channels": ("Position channels", "Learned absolute positions as extra residual channels (0 = none)"),
    "alibi_heads": ("ALiBi heads", "Heads with a fixed recency bias on their attention logits (0 = none; no parameters)"),
    "dense": ("Dense twin", "Train without weight sparsity (same data order and steps)"),
}
SPINS = {  # name -> (minimum, maximum, step, decimals or None for integers)
    "n_layer": (1, 64, 1, None), "d_model": (1, 8192, 16, None), "d_mlp": (1, 65536, 64, None),
    "density": (0.0, 1.0, 0.005, 5), "afrac": (0.0, 1.0, 0.05, 3), "steps": (0, 10_000_000, 50, None),
    "lr": (0.0, 1.0, 0.001, 5), "pos_channels": (0, 4096, 1, None), "alibi_heads": (0, 512, 1, None),
}
RUNS_HOME = Path.home() / "circuit-inspector-runs"  # where suggested output folders go


def config_values(cfg) -> dict[str, Any]:
    """A RunConfig as the form's flat values (corpus folders joined with ``os.pathsep``)."""
    m, s, d, t = cfg.model, cfg.sparsity, cfg.data, cfg.train
    return {"n_layer": m.n_layer, "d_model": m.d_model, "d_mlp": m.d_mlp, "density": s.density,
            "afrac": m.afrac, "steps": t.steps, "lr": t.lr, "tokenizer": d.tokenizer, "attn_sink": m.attn_sink,
            "pos_channels": m.pos_channels, "alibi_heads": m.alibi_heads, "dense": not s.enabled, "corpus": os.pathsep.join(d.folders)}


def config_patch(values: dict[str, Any]) -> dict[str, Any]:
    """The form's flat values as a partial config for ``run_config_from_dict`` (a dense twin keeps the
    base config's density: the field is disabled and not used)."""
    folders = [str(Path(f).expanduser()) for f in values["corpus"].split(os.pathsep) if f.strip()]
    return {"model": {"n_layer": values["n_layer"], "d_model": values["d_model"], "d_mlp": values["d_mlp"],
                      "afrac": values["afrac"], "attn_sink": values["attn_sink"],
                      "pos_channels": values["pos_channels"], "alibi_heads": values["alibi_heads"]},
            "sparsity": {"enabled": False} if values["dense"] else {"density": values["density"], "enabled": True},
            "data": {"tokenizer": values["tokenizer"], "folders": folders},
            "train": {"steps": values["steps"], "lr": values["lr"]}}


def default_output(preset: str, home: Path = RUNS_HOME) -> Path:
    """``home/<preset>``, or ``<preset>-2``, ``-3``... : the first that is missing or empty."""
    for i in range(1, 10_000):
        path = home / (preset if i == 1 else f"{preset}-{i}")
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            return path
    return home / preset


class ConfigForm(QWidget):
    """Editable training settings; emits ``changed`` on every edit, ``presetChosen`` on a preset and
    ``outputChosen`` when the output folder was chosen with its picker (not typed)."""

    changed = Signal()
    presetChosen = Signal(str)
    outputChosen = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._filling = False
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.preset = QComboBox()
        self.preset.setObjectName("presetCombo")
        self.preset.setToolTip("Start from a preset; every field below can be edited")
        self.preset.currentTextChanged.connect(self._on_preset)
        form.addRow("Preset", self.preset)
        self.widgets: dict[str, QWidget] = {}
        for name, (label, tip) in FIELDS.items():
            widget = self._make(name)
            widget.setObjectName(f"train_{name}")
            widget.setToolTip(tip)
            self.widgets[name] = widget
            form.addRow(label, widget)
        self.widgets["dense"].toggled.connect(lambda dense: self.widgets["density"].setEnabled(not dense))
        self.corpus = QLineEdit()
        self.corpus.setObjectName("train_corpus")
        self.corpus.setPlaceholderText("default: the Python standard library + idiom snippets")
        self.corpus.setToolTip("A folder of .py source files to train on")
        self.output = QLineEdit()
        self.output.setObjectName("train_output")
        self.output.setToolTip("The run folder to create (or to resume)")
        for label, edit, title in (("Corpus", self.corpus, "Corpus folder (source files)"),
                                   ("Output run", self.output, "Output run folder")):
            edit.textChanged.connect(self._emit_changed)
            form.addRow(label, self._with_browse(edit, title))
        self.message = QLabel("")
        self.message.setObjectName("trainConfigMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow(self.message)

    def _make(self, name: str) -> QWidget:
        if name == "tokenizer":
            box = QComboBox()
            box.addItems(["char", "bpe"])
            box.currentTextChanged.connect(self._emit_changed)
            return box
        if name in ("attn_sink", "dense"):
            check = QCheckBox()
            check.toggled.connect(self._emit_changed)
            return check
        lo, hi, step, decimals = SPINS[name]
        spin = QSpinBox() if decimals is None else QDoubleSpinBox()
        if decimals is not None:
            spin.setDecimals(decimals)
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setKeyboardTracking(False)  # one change per finished edit, not per key
        spin.valueChanged.connect(self._emit_changed)
        return spin

    def _with_browse(self, edit: QLineEdit, title: str) -> QWidget:
        row = QWidget()
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(edit, 1)
        button = QPushButton("…")
        button.setFixedWidth(28)
        button.setToolTip(f"Choose the {title.lower()}")
        button.clicked.connect(lambda: self._browse(edit, title))
        box.addWidget(button)
        return row

    def _browse(self, edit: QLineEdit, title: str) -> None:
        start = edit.text().strip() or str(Path.home())
        chosen = dialogs.ask_folder(self, title, str(Path(start).expanduser().parent if edit is self.output else start))
        if chosen is not None:
            edit.setText(str(chosen))
            if edit is self.output:
                self.outputChosen.emit()

    # -- values ------------------------------------------------------------------------------------
    def set_presets(self, names: list[str], current: str) -> None:
        self._filling = True
        self.preset.clear()
        self.preset.addItems(names)
        self.preset.setCurrentText(current)
        self._filling = False

    def values(self) -> dict[str, Any]:
        """The form as flat values (see :data:`FIELDS`) plus ``corpus`` and ``output`` text."""
        out: dict[str, Any] = {}
        for name, widget in self.widgets.items():
            if isinstance(widget, QComboBox):
                out[name] = widget.currentText()
            elif isinstance(widget, QCheckBox):
                out[name] = widget.isChecked()
            else:
                out[name] = widget.value()
        out["corpus"] = self.corpus.text().strip()
        out["output"] = self.output.text().strip()
        return out

    def set_values(self, values: dict[str, Any]) -> None:
        """Fill the named fields (others keep their value) with one ``changed`` at the end."""
        self._filling = True
        try:
            for name, value in values.items():
                widget = self.widgets.get(name)
                if name == "corpus":
                    self.corpus.setText(str(value))
                elif name == "output":
                    self.output.setText(str(value))
                elif isinstance(widget, QComboBox):
                    widget.setCurrentText(str(value))
                elif isinstance(widget, QCheckBox):
                    widget.setChecked(bool(value))
                elif widget is not None:
                    widget.setValue(value)
        finally:
            self._filling = False
        self.changed.emit()

    def set_message(self, text: str, ok: bool) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(f"color: {theme.MUTED if ok else theme.BAD};")

    @Slot()
    def _emit_changed(self, *_args) -> None:
        if not self._filling:
            self.changed.emit()

    @Slot(str)
    def _on_preset(self, name: str) -> None:
        if name and not self._filling:
            self.presetChosen.emit(name)
