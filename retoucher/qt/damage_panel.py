"""The Find Damage panel: a small dock with the sensitivity slider, the grow box, a Default
button and a line that says what the latest Find Damage added and whether it can still be
adjusted. It only shows and reports values; :mod:`.damage_controller` acts on them."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..damage_review import MAX_DAMAGE_GROW, SENSITIVITY_STEPS, sensitivity_of, threshold_of

__all__ = ["DamagePanel"]


class DamagePanel(QDockWidget):
    """Signals ``changed(threshold, grow)`` when the user moves the slider (Default moves it to
    the detector's calibrated threshold) or changes the grow."""

    changed = Signal(float, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Find Damage", parent)
        self.setObjectName("find-damage")
        self.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        self._default_threshold = 0.5
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(1, SENSITIVITY_STEPS - 1)
        self.slider.setPageStep(SENSITIVITY_STEPS // 20)
        self.slider.setMinimumWidth(120)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keep keys (space, \\) on the canvas
        self.slider.setToolTip(
            "Higher finds fainter damage, and more that is not damage. The mask follows at once."
        )
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(36)
        self.grow = QSpinBox()
        self.grow.setRange(0, MAX_DAMAGE_GROW)
        self.grow.setSuffix(" px")
        self.grow.setMaximumWidth(90)
        self.grow.setToolTip("Widen what was found by this many pixels, so that a fill leaves no edge")
        self.default_button = QPushButton("Default")
        self.default_button.setToolTip("The sensitivity the detector was calibrated for")
        self.info = QLabel("Tools \u25b8 Find Damage marks scratches, cracks, dust and spots as hole.")
        self.info.setWordWrap(True)
        self.info.setMinimumWidth(240)
        row = QHBoxLayout()
        row.addWidget(self.slider, 1)
        row.addWidget(self.value_label)
        row.addWidget(self.default_button)
        form = QFormLayout()
        form.addRow("Sensitivity", row)
        form.addRow("Grow by", self.grow)
        form.addRow(self.info)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addLayout(form)
        layout.addStretch(1)
        self.setWidget(body)
        self.slider.valueChanged.connect(self._on_slider)
        self.grow.valueChanged.connect(self._emit)
        self.default_button.clicked.connect(self.reset_sensitivity)
        self.set_adjustable(False)

    # ------------------------------------------------------------------ values
    @property
    def default_threshold(self) -> float:
        return self._default_threshold

    @property
    def threshold(self) -> float:
        """The detector threshold the slider stands at (its default exactly, at the default)."""
        if self.slider.value() == sensitivity_of(self._default_threshold):
            return self._default_threshold
        return threshold_of(self.slider.value())

    def show_values(self, threshold: float, grow: int, default_threshold: float) -> None:
        """Show these values without reporting them."""
        self._default_threshold = default_threshold
        for widget, value in ((self.slider, sensitivity_of(threshold)), (self.grow, grow)):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self._show_value()

    def set_adjustable(self, on: bool, info: str | None = None) -> None:
        """Enable the controls (they adjust the latest Find Damage) or not; ``info``: the line
        under them."""
        for w in (self.slider, self.grow, self.default_button):
            w.setEnabled(on)
        if info is not None:
            self.info.setText(info)

    # ------------------------------------------------------------------ the user's changes
    def _show_value(self) -> None:
        percent = 100 * self.slider.value() / SENSITIVITY_STEPS
        self.value_label.setText(f"{percent:.0f}%")
        self.value_label.setToolTip(f"Marks pixels whose damage probability is at least {self.threshold:.3f}")

    def _on_slider(self, _value: int) -> None:
        self._show_value()
        self._emit()

    def reset_sensitivity(self) -> None:
        """Move the slider to the calibrated threshold (reported when it moves)."""
        self.slider.setValue(sensitivity_of(self._default_threshold))

    def _emit(self, _value: object = None) -> None:
        self.changed.emit(self.threshold, self.grow.value())
