"""Preferences and About dialogs."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.texture_strength import MAX_TEXTURE
from engine.weight_header import DEFAULT_WEIGHTS_NAME

from .file_filters import WEIGHTS_FILTER
from .settings import (
    DEFAULT_OVERLAY_COLOUR,
    DEVICES,
    MAX_BRUSH_SIZE,
    MAX_JPEG_QUALITY,
    MIN_BRUSH_SIZE,
    MIN_JPEG_QUALITY,
    Settings,
)

if TYPE_CHECKING:  # pragma: no cover
    from engine.weights import WeightsInfo


def app_version() -> str:
    try:
        return metadata.version("retoucher")
    except metadata.PackageNotFoundError:
        return "dev"


def path_row(edit: QLineEdit, browse: Callable[[], None], name: str) -> QHBoxLayout:
    """A path field with its Browse\u2026 button (``browse`` picks the path); ``name``: what the
    field holds, for a screen reader (a field beside its button has no label of its own, and the
    Batch dialog's three buttons all read "Browse")."""
    edit.setAccessibleName(name)
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    button = QPushButton("Browse\u2026")
    button.setAccessibleName(f"Browse for the {name[0].lower()}{name[1:]}")
    button.clicked.connect(browse)
    row.addWidget(button)
    return row


OWN_TEXTURE = "The model\u2019s own"
"""The Fill texture check box: fill at the strength the model's weight file names."""


class PreferencesDialog(QDialog):
    """Device, weights file, texture strength, the mirrored pass, JPEG quality, default brush
    size, what the wheel does; :meth:`apply` stores them."""

    def __init__(
        self,
        settings: Settings,
        parent: QWidget | None = None,
        *,
        model_texture: Callable[[str], float | None] | None = None,
        weights_problem: Callable[[str], str | None] | None = None,
    ) -> None:
        """``model_texture(weights)``: the own texture strength of the model in the weights file
        the dialog shows ("" = the bundled model; None: not known), shown beside "the model's
        own" and read again when another file is chosen. ``weights_problem(weights)``: why a
        weights file cannot fill (None: it can); OK refuses such a file with that reason."""
        super().__init__(parent)
        self._texture_of = model_texture or (lambda _weights: None)
        self._weights_problem = weights_problem or (lambda _weights: None)
        self.problem: str | None = None  # why OK refused the weights file, the last time
        self._model_texture: float | None = None
        self.setWindowTitle("Preferences")
        self.setMinimumWidth(560)
        self.settings = settings
        form = QFormLayout()

        self.device = QComboBox()
        labels = {"auto": "Automatic (CUDA GPU if present, else CPU)", "cpu": "CPU", "cuda": "CUDA GPU"}
        for d in DEVICES:
            self.device.addItem(labels[d], d)
        self.device.setCurrentIndex(DEVICES.index(settings.device))
        form.addRow("Device:", self.device)

        self.weights = QLineEdit(settings.weights)
        self.weights.setPlaceholderText(f"bundled model (resources/weights/{DEFAULT_WEIGHTS_NAME})")
        form.addRow("Weights file:", path_row(self.weights, self._browse, "Weights file"))

        self.texture = QDoubleSpinBox()
        self.texture.setRange(0.0, MAX_TEXTURE)
        self.texture.setSingleStep(0.25)
        self.texture.setDecimals(2)
        self.texture.setSpecialValueText("Off")
        self.texture.setToolTip(
            "Add the photo's fine texture (film grain, foliage, gravel), synthesised from around "
            "the hole, to the model's fill, which is smoother than the photo. Off: the model's "
            "fill alone; 1: as strong as the texture around the hole; 0.5 halves it."
        )
        self.texture_own = QCheckBox(OWN_TEXTURE)
        self.texture_own.setToolTip(
            "Fill at the strength the model's weight file names: the one its published quality "
            "was measured at. It follows the model when you choose another weights file."
        )
        self.texture_own.setChecked(settings.texture is None)
        self._model_changed()  # the model's own strength, shown while the check box is ticked
        if settings.texture is not None:
            self.texture.setValue(settings.texture)
        self.texture_own.toggled.connect(self._own_toggled)
        self.weights.editingFinished.connect(self._model_changed)
        self.texture.setAccessibleName("Fill texture strength")
        texture_row = QHBoxLayout()
        texture_row.addWidget(self.texture_own)
        texture_row.addWidget(self.texture, 1)
        form.addRow("Fill texture:", texture_row)
        self.mirror = QCheckBox("Second pass on the mirror image")
        self.mirror.setToolTip(
            "The model also fills the mirror image of the hole's surroundings and the two fills "
            "are averaged: a little closer to the truth (0.03-0.05 dB on the test split) for "
            "twice the model's time per fill. Off: one pass, for a slow computer."
        )
        self.mirror.setChecked(settings.mirror)
        form.addRow("Fill quality:", self.mirror)

        self.quality = QSpinBox()
        self.quality.setRange(MIN_JPEG_QUALITY, MAX_JPEG_QUALITY)
        self.quality.setValue(settings.jpeg_quality)
        form.addRow("JPEG quality:", self.quality)
        self.keep_jpeg = QCheckBox("Photos opened from a JPEG keep its compression")
        self.keep_jpeg.setToolTip(
            "Save a JPEG photo as JPEG with the original's quantisation and chroma subsampling, "
            "so its quality and size stay as they were; the quality above applies otherwise."
        )
        self.keep_jpeg.setChecked(settings.jpeg_keep_original)
        form.addRow("", self.keep_jpeg)

        self.brush = QSpinBox()
        self.brush.setRange(MIN_BRUSH_SIZE, MAX_BRUSH_SIZE)
        self.brush.setSuffix(" px")
        self.brush.setValue(settings.brush_size)
        form.addRow("Default brush size:", self.brush)

        self.overlay_colour = OverlayColourBox(settings.overlay_colour)
        form.addRow("Mask colour:", self.overlay_colour)
        self.wheel_zooms = QCheckBox("Mouse wheel zooms")
        self.wheel_zooms.setToolTip(
            "The wheel zooms about the pointer instead of scrolling (Shift+wheel still scrolls "
            "sideways); off: the wheel scrolls and Ctrl+wheel or a pinch zooms."
        )
        self.wheel_zooms.setChecked(settings.wheel_zooms)
        form.addRow("Navigation:", self.wheel_zooms)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self._shown = self._values()

    def _values(self) -> dict[str, object]:
        """The settings the dialog shows, by their :class:`Settings` names."""
        return {
            "device": self.device.currentData(),
            "weights": self.weights.text().strip(),
            "texture": None if self.texture_own.isChecked() else self.texture.value(),
            "mirror": self.mirror.isChecked(),
            "jpeg_quality": self.quality.value(),
            "jpeg_keep_original": self.keep_jpeg.isChecked(),
            "brush_size": self.brush.value(),
            "overlay_colour": self.overlay_colour.colour(),
            "wheel_zooms": self.wheel_zooms.isChecked(),
        }

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Choose a weights file",
            self.weights.text() or str(Path.home()),
            WEIGHTS_FILTER,
        )
        if path:
            self.weights.setText(path)
            self._model_changed()

    def _model_changed(self) -> None:
        """The weights file shown changed: its model's own strength, beside the check box and,
        while that is ticked, in the (disabled) spin box."""
        self._model_texture = self._texture_of(self.weights.text().strip())
        known = self._model_texture is not None
        self.texture_own.setText(OWN_TEXTURE + (f" ({self._model_texture:g})" if known else ""))
        self._own_toggled(self.texture_own.isChecked())

    def _own_toggled(self, own: bool) -> None:
        """The check box: ticked, the spin box is disabled and shows the model's own strength."""
        self.texture.setDisabled(own)
        if own:
            self.texture.setValue(self._model_texture or 0.0)

    def accept(self) -> None:
        """OK: stored, unless the weights file cannot fill (it was kept and said nothing until
        the next Fill, after the hole was painted)."""
        weights = self.weights.text().strip()
        # only a file chosen now: one stored before and gone since (a drive unplugged) must not
        # keep every other preference from being changed (Device, after a device error)
        self.problem = self._weights_problem(weights) if weights != self.settings.weights else None
        if self.problem:
            box = QMessageBox(
                QMessageBox.Icon.Warning,
                "Cannot use this weights file",
                f"{self.problem}\n\nChoose a Retoucher model's weights file (.safetensors, from "
                "'retoucher-train export'), or clear the field for the bundled model.",
                QMessageBox.StandardButton.Ok,
                self,
            )
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()  # the dialog stays open, with the file to change
            self.weights.setFocus()
            return
        super().accept()

    def apply(self) -> None:
        """Store what was changed here, only that: every field written on each OK undid another
        window's changes to the fields left alone, and kept a default the user never chose from
        reaching them when it changed."""
        for name, value in self._values().items():
            if value != self._shown[name]:
                setattr(self.settings, name, value)
        self.settings.sync()


OVERLAY_PRESETS = (
    ("Red", DEFAULT_OVERLAY_COLOUR),
    ("Green", "#00c853"),
    ("Blue", "#2979ff"),
    ("Cyan", "#00e5ff"),
    ("Magenta", "#e040fb"),
    ("Yellow", "#ffd600"),
)
"""The mask colours offered first: strong hues that stand apart from each other."""


def colour_swatch(colour: QColor) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(colour)
    return QIcon(pixmap)


class OverlayColourBox(QComboBox):
    """A choice of mask colour: the presets, plus any other colour picked with "Other…" (a
    colour dialog, kept in :attr:`picker` while it is open)."""

    OTHER = "Other\u2026"

    def __init__(self, colour: QColor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.picker: QColorDialog | None = None
        for name, value in OVERLAY_PRESETS:
            self.addItem(colour_swatch(QColor(value)), name, value)
        self.addItem(self.OTHER, None)
        self.set_colour(colour)
        self.activated.connect(self._on_activated)

    def colour(self) -> QColor:
        return QColor(self.currentData())

    def set_colour(self, colour: QColor) -> None:
        name = QColor(colour).name()
        index = self.findData(name)
        if index < 0:  # not a preset: shown as its own entry before "Other..."
            index = self.count() - 1
            self.insertItem(index, colour_swatch(QColor(name)), name, name)
        self.setCurrentIndex(index)

    def _on_activated(self, index: int) -> None:
        if self.itemData(index) is not None:
            return
        previous = self.colour()
        self.set_colour(previous)  # until a colour is picked
        self.picker = QColorDialog(previous, self)
        self.picker.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.picker.colorSelected.connect(self.set_colour)
        self.picker.finished.connect(self._picker_closed)
        self.picker.open()

    def _picker_closed(self) -> None:
        self.picker = None


MAX_SHOWN_CHARS = 400
"""The most characters of one provenance value the About box shows (the weight file holds it
all: the trained species' names, each training stage's settings, every evaluated figure)."""
MAX_SHOWN_ITEMS = 6


def _format_value(value: object) -> str:
    """A provenance or metric value for display: floats to 4 digits, dicts and lists as JSON,
    a long list as its count and first items, anything longer than :data:`MAX_SHOWN_CHARS`
    cut with what was left out (one value was 8,000 characters on one line)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and len(value) > MAX_SHOWN_ITEMS:
        head = ", ".join(_format_value(v) for v in value[:3])
        text = f"{len(value)} items: {head}, \u2026"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = str(value)
    if len(text) > MAX_SHOWN_CHARS:
        text = f"{text[:MAX_SHOWN_CHARS]}\u2026 ({len(text):,} characters in all; the weight file holds them)"
    return text


def provenance_html(info: WeightsInfo | None) -> str:
    """An HTML description of a ``WeightsInfo``: name, architecture, provenance and metrics."""
    if info is None:
        return "<p>No model information.</p>"
    rows = [("Name", info.name)]
    if info.path is not None:
        rows.append(("File", str(info.path)))
    cfg = info.config
    rows.append(
        (
            "Architecture",
            f"partial-convolution U-Net, depth {cfg.depth}, widths {list(cfg.widths)}, trained at {cfg.image_size} px",
        )
    )
    rows.append(("Stored as", info.dtype))
    rows.append(("Own texture strength", f"{info.texture:g}"))
    prov = dict(info.provenance or {})
    metrics = prov.pop("metrics", None)
    out = _table(rows)
    if prov:
        out += ["<h4>Provenance</h4>", *_table(sorted(prov.items()))]
    if metrics:
        items = metrics.items() if isinstance(metrics, dict) else [("metrics", metrics)]
        out += ["<h4>Metrics</h4>", *_table(items)]
    if not prov and not metrics:
        out.append("<p>The weight file records no provenance.</p>")
    return "".join(out)


def _table(rows: Iterable[tuple[object, object]]) -> list[str]:
    """An HTML table of (name, value) rows, as parts to join."""
    cells = [
        f"<tr><td><b>{html.escape(str(k))}</b></td><td>{html.escape(_format_value(v))}</td></tr>"
        for k, v in rows
    ]
    return ["<table cellspacing='4'>", *cells, "</table>"]


def detector_html(header: tuple[str, float, dict] | None, path: Path | None) -> str:
    """The damage detector's name, file, calibrated sensitivity and provenance (None: its file
    cannot be read)."""
    if header is None:
        return "<p>The damage detector's file cannot be read; Find Damage says why.</p>"
    name, threshold, provenance = header
    rows: list[tuple[object, object]] = [("Name", name)]
    if path is not None:
        rows.append(("File", str(path)))
    rows.append(("Calibrated threshold", f"{threshold:g} (Find Damage's Default sensitivity)"))
    out = _table(rows)
    prov = {k: v for k, v in provenance.items() if k != "threshold"}
    if prov:
        out += ["<h4>Provenance</h4>", *_table(sorted(prov.items()))]
    return "".join(out)


class AboutDialog(QDialog):
    """The app, the method, and the model in use with its provenance and metrics; the damage
    detector (``detector``: its :func:`detector_html`)."""

    def __init__(
        self,
        info: WeightsInfo | None,
        problem: str | None = None,
        parent: QWidget | None = None,
        *,
        detector: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Retoucher")
        self.resize(560, 480)
        text = QTextBrowser()
        text.setOpenExternalLinks(True)
        parts = [
            f"<h2>Retoucher {html.escape(app_version())}</h2>",
            "<p>Fills holes in photos with a partial-convolution U-Net "
            "(G. Liu et al., <i>Image Inpainting for Irregular Holes Using Partial Convolutions</i>, "
            "ECCV 2018). Paint over what should go, press Fill.</p>",
            "<h3>Model</h3>",
        ]
        if problem:
            parts.append(f"<p><b>{html.escape(problem)}</b></p>")
        if info is not None:
            parts.append(provenance_html(info))
        if detector:
            parts += ["<h3>Damage detector</h3>", detector]
        text.setHtml("".join(parts))
        self.text = text
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(buttons)
