"""The Find Damage panel: a small dock with the sensitivity slider, the grow box, a Default
button and a line that says what the latest Find Damage added and whether it can still be
adjusted. It only shows and reports values; :mod:`.damage_controller` acts on them.

Re-thresholding, growing and repainting a 12-megapixel mask takes a good part of a second, so a
drag of the slider is not reported tick by tick: a moved slider is reported at most once per
:data:`SLIDER_DELAY_MS` (always its latest value), and at once when it is released."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
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

__all__ = ["SLIDER_DELAY_MS", "DamagePanel"]

SLIDER_DELAY_MS = 80
"""While the slider moves, its value is reported at most this often (milliseconds)."""


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
        # Tab reaches it (the arrow keys move it), a click does not take the keys (space, \\)
        # from the canvas: with no focus at all it could not be moved without a mouse
        self.slider.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.slider.setAccessibleName("Sensitivity")
        self.slider.setToolTip(
            "Higher finds fainter damage, and more that is not damage. The mask follows as it moves."
        )
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(36)
        self.grow = QSpinBox()
        self.grow.setRange(0, MAX_DAMAGE_GROW)
        self.grow.setSuffix(" px")
        self.grow.setMaximumWidth(90)
        self.grow.setToolTip("Widen what was found by this many pixels, so that a fill leaves no edge")
        self.default_button = QPushButton("Default")
        self.default_button.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # Space pans the photo after a click
        self.default_button.setAccessibleName("Default sensitivity")
        self.default_button.setToolTip("The sensitivity the detector was calibrated for")
        self.info = QLabel("Tools \u25b8 Find Damage marks scratches, cracks, dust and spots as hole.")
        self.info.setWordWrap(True)
        self.info.setMinimumWidth(240)
        row = QHBoxLayout()
        row.addWidget(self.slider, 1)
        row.addWidget(self.value_label)
        row.addWidget(self.default_button)
        form = QFormLayout()
        sensitivity = QLabel("&Sensitivity")  # Alt+S, as Alt+G for Grow by
        sensitivity.setBuddy(self.slider)
        form.addRow(sensitivity, row)
        form.addRow("&Grow by", self.grow)
        form.addRow(self.info)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addLayout(form)
        layout.addStretch(1)
        self.setWidget(body)
        self._report_timer = QTimer(self)
        self._report_timer.setSingleShot(True)
        self._report_timer.setInterval(SLIDER_DELAY_MS)
        self._report_timer.timeout.connect(self._emit)
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.sliderReleased.connect(self.flush)
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

    @property
    def pending(self) -> bool:
        """Whether the slider moved since its value was last reported (it will be, shortly)."""
        return self._report_timer.isActive()

    def show_values(self, threshold: float, grow: int, default_threshold: float) -> None:
        """Show these values without reporting them (a move not reported yet is dropped)."""
        self._report_timer.stop()
        self._default_threshold = default_threshold
        for widget, value in ((self.slider, sensitivity_of(threshold)), (self.grow, grow)):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self._show_value()

    def show_remembered(self, threshold: float | None, grow: int, default_threshold: float) -> None:
        """Before any find: the sensitivity and grow the next Find Damage uses (``threshold``
        None: the detector's calibrated ``default_threshold``). It showed 1% and 0 px whatever
        was remembered."""
        self.show_values(default_threshold if threshold is None else threshold, grow, default_threshold)

    def set_adjustable(self, on: bool, info: str | None = None) -> None:
        """Enable the controls (they adjust the latest Find Damage) or not; ``info``: the line
        under them. Turned off, a move not reported yet is dropped: there is nothing to adjust."""
        if not on:
            self._report_timer.stop()
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
        if not self._report_timer.isActive():  # not restarted: a long drag still updates the mask
            self._report_timer.start()

    def flush(self) -> None:
        """Report the slider's value now if a move of it is waiting to be reported (on release)."""
        if self._report_timer.isActive():
            self._emit()

    def reset_sensitivity(self) -> None:
        """Move the slider to the calibrated threshold (reported at once when it moves)."""
        self.slider.setValue(sensitivity_of(self._default_threshold))
        self.flush()

    def _emit(self, _value: object = None) -> None:
        self._report_timer.stop()  # this report carries the slider's latest value too
        self.changed.emit(self.threshold, self.grow.value())
