"""The main window's menu bar and toolbar: which actions go where (the actions themselves are
made by :class:`~.main_window.MainWindow`, the mask actions by :mod:`.mask_actions`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QSlider, QSpinBox, QToolBar, QToolButton

from .focus import hand_keys_back
from .settings import MAX_BRUSH_SIZE, MIN_BRUSH_SIZE

if TYPE_CHECKING:  # pragma: no cover
    from .main_window import MainWindow

__all__ = ["build_menus", "build_toolbar"]


def build_menus(w: MainWindow) -> None:
    """The menu bar: File, Edit, Mask, View, Tools, Help."""
    mb = w.menuBar()
    m = mb.addMenu("&File")
    m.addAction(w.open_action)
    w.recent_menu = w.files.recent_menu
    m.addMenu(w.recent_menu)
    m.addAction(w.paste_action)
    m.addSeparator()
    m.addActions([w.save_action, w.save_as_action, w.export_mask_action, w.masks.load_action])
    m.addSeparator()
    m.addAction(w.batch_action)
    m.addSeparator()
    m.addAction(w.quit_action)

    m = mb.addMenu("&Edit")
    m.addActions([w.undo_action, w.redo_action])
    m.addSeparator()
    m.addActions([w.fill_action, w.cancel_action, w.clear_mask_action])
    m.addSeparator()
    m.addAction(w.preferences_action)
    mb.addMenu(w.masks.menu)

    m = mb.addMenu("&View")
    m.addActions([w.zoom_in_action, w.zoom_out_action, w.fit_action, w.actual_size_action])
    m.addSeparator()
    m.addActions([w.compare_action, w.split_action, w.masks.overlay_action])

    m = mb.addMenu("&Tools")
    m.addActions(list(w.tool_actions.values()))
    m.addSeparator()
    m.addActions([w.smaller_action, w.larger_action])
    m.addSeparator()
    m.addActions([w.damage.action, w.damage.panel_action])

    m = mb.addMenu("&Help")
    m.addActions([w.shortcuts_action, w.about_action])


def build_toolbar(w: MainWindow) -> None:
    """The toolbar: files, history, tools, the brush size (slider and box, kept on the window as
    ``size_slider``/``size_spin``), Find Damage, Fill and Cancel, compare and zoom."""
    tb = QToolBar("Tools", w)
    tb.setObjectName("tools")
    tb.setMovable(False)
    w.addToolBar(tb)
    tb.addActions([w.open_action, w.save_action])
    tb.addSeparator()
    tb.addActions([w.undo_action, w.redo_action])
    tb.addSeparator()
    tb.addActions(list(w.tool_actions.values()))
    size_label = QLabel(" Size ")
    tb.addWidget(size_label)
    w.size_slider = QSlider(Qt.Orientation.Horizontal)
    w.size_slider.setRange(1, 400)
    w.size_slider.setFixedWidth(80)
    w.size_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keep keys (space, \\) on the canvas
    w.size_spin = QSpinBox()
    w.size_spin.setRange(MIN_BRUSH_SIZE, MAX_BRUSH_SIZE)
    w.size_spin.setSuffix(" px")
    w.size_slider.valueChanged.connect(w.set_brush_size)
    w.size_spin.valueChanged.connect(w.set_brush_size)
    hand_keys_back(w.size_spin, w.canvas)
    size_label.setBuddy(w.size_spin)
    w.size_spin.setAccessibleName("Brush size")
    w.size_slider.setAccessibleName("Brush size")
    tb.addWidget(w.size_slider)
    tb.addWidget(w.size_spin)
    tb.addAction(w.clear_mask_action)
    tb.addSeparator()
    tb.addAction(w.damage.action)
    w.fill_button = QPushButton("Fill")
    w.fill_button.setToolTip("Fill the painted hole (Ctrl+Enter)")
    w.fill_button.clicked.connect(w.fill)
    w.fill_button.setDefault(True)
    # keep keys (space, \\) on the canvas: a click on Fill with nothing painted left the focus
    # here, and space-drag then painted instead of panning
    w.fill_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    tb.addWidget(w.fill_button)
    # Cancel on the toolbar only while there is something to stop (the Edit menu keeps its item):
    # a 1100 px window (1366 x 768 at 125%) had no room for Compare, Split, Fit and 100% beside a
    # Cancel that did nothing
    cancel = QToolButton()
    cancel.setDefaultAction(w.cancel_action)
    cancel.setAutoRaise(True)
    cancel.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    w.cancel_tool = tb.addWidget(cancel)
    w.cancel_tool.setVisible(False)
    tb.addSeparator()
    tb.addActions([w.compare_action, w.split_action, w.fit_action, w.actual_size_action])
    w.set_brush_size(w.canvas.brush_size)
