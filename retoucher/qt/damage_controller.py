"""Tools > Find Damage for the main window.

:class:`DamageController` runs the damage detector on a copy of the open photo in the worker
(:class:`~.damage_worker.DetectJob` on the window's :class:`~.job_runner.JobRunner`: progress,
busy cursor, Esc cancels) and adds what it finds to the hole mask as one undo step, "Find Damage"
(a :class:`~retoucher.damage_review.FoundDamage` in an ``EditCommand``). A result for a photo that
was replaced or filled meanwhile is dropped.

The Find Damage panel (:class:`~.damage_panel.DamagePanel`) then adjusts that step from the
detection it keeps, without running the network again: the sensitivity re-thresholds the
probability, the grow widens what was found; the step stays one step whatever the values. The
rule: a find can be adjusted while it is the latest step of the history. Anything else that moves
the history (a stroke, any mask or fill step, undo, redo, another photo) settles it as it is, and
the panel waits for the next Find Damage, so nothing painted afterwards is ever lost. A find
re-tuned until it adds nothing is taken off the history (its command made obsolete, which
``QUndoStack.undo`` removes without undoing it), so Undo goes to the step before; re-tuned to add
something again, it is pushed again. The last sensitivity and grow are remembered in the
settings (the sensitivity as None while it is the detector's calibrated default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt

from engine.weight_header import DEFAULT_THRESHOLD, WeightsError, damage_weights_path, read_damage_header

from ..damage_review import FoundDamage
from ..document import Document, Edit
from .actions import make_action
from .commands import EditCommand
from .damage_panel import DamagePanel
from .damage_worker import Detection, DetectJob, DetectorCache
from .focus import hand_keys_back
from .job_runner import JobRunner
from .worker import applying_error

if TYPE_CHECKING:  # pragma: no cover
    from .main_window import MainWindow

__all__ = ["DamageController"]

_PANEL_WIDTH = 300  # pixels, when the panel first shows
_REVIEW_HINT = "Adjust it here; erase false finds (E) and brush missed damage (B), then Fill (Ctrl+Enter)."


class DamageController(QObject):
    """Find Damage for ``window``: ``detectors`` builds the detector on first use, ``runner`` runs
    the job, ``push`` puts a (done) edit on the window's undo stack. :attr:`action` is the menu
    and toolbar entry, :attr:`panel` the dock (shown after a find)."""

    def __init__(
        self, window: MainWindow, detectors: DetectorCache, runner: JobRunner, push: Callable[[Edit], None]
    ) -> None:
        super().__init__(window)
        self.window = window
        self.detectors = detectors
        self.runner = runner
        self._push = push
        self.action = make_action(
            window,
            "Find &Damage",
            self.find,
            "Ctrl+D",
            tip="Mark scratches, cracks, dust and spots as hole, to review before Fill",
            short="Find Damage",
        )
        self.panel = DamagePanel(window)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.panel)
        self.panel.hide()
        self.panel_action = self.panel.toggleViewAction()
        self.panel_action.setText("Find Damage &Panel")
        self.panel.changed.connect(self.adjust)
        header = self.detector_header()
        self.panel.show_remembered(
            window.settings.damage_threshold,
            window.settings.damage_grow,
            header[1] if header else DEFAULT_THRESHOLD,
        )
        hand_keys_back(self.panel.grow, window.canvas)
        self.found: FoundDamage | None = None  # the latest find, while it can be adjusted
        self._doc: Document | None = None  # the photo it was made on
        self._index = -1  # the history's index right after it
        self._in_history = False
        self._recording = False  # the history moves because of the find itself: no settling

    # ------------------------------------------------------------------ state
    @property
    def adjustable(self) -> bool:
        """The latest find can be adjusted now (it is the latest step of the open photo's
        history, and no job runs)."""
        return (
            self.found is not None
            and self._doc is self.window.doc
            and not self.runner.busy
            and self.window.undo_stack.index() == self._index
        )

    def update_enabled(self, has_photo: bool, idle: bool) -> None:
        """Follow the window's state (called on every change of it and of its history): Find
        Damage needs a photo and no job running; a find is settled once the history moved
        past it or the photo was replaced."""
        self.action.setEnabled(has_photo and idle)
        if self._recording:  # the find's own step comes or goes: the panel stays as it is
            return
        w = self.window
        moved = self._doc is not w.doc or w.undo_stack.index() != self._index
        if self.found is not None and moved:
            self.settle()
        self.panel.set_adjustable(self.adjustable)

    def detector_header(self) -> tuple[str, float, dict] | None:
        """The configured detector's name, calibrated threshold and provenance from its file's
        header (no torch), or None when it cannot be read (the first find says why)."""
        try:
            return read_damage_header(damage_weights_path(self.detectors.weights))
        except (WeightsError, OSError):
            return None

    def settle(self) -> None:
        """Keep the latest find as it is; the panel waits for the next Find Damage."""
        if self.found is None:
            return
        self.found.settle()
        self.found = self._doc = None
        self.panel.set_adjustable(
            False,
            "Settled: the history moved on since (an edit, fill, undo or another photo). "
            "Find Damage (Ctrl+D) again to adjust.",
        )

    # ------------------------------------------------------------------ running
    def find(self) -> DetectJob | None:
        """Search the open photo for damage in the worker (None when there is no photo or a job
        runs). The result arrives as one undo step."""
        w = self.window
        if w.doc is None or self.runner.busy:
            return None
        if w.doc.alpha is not None and not w.doc.alpha.any():
            self._message("Nothing to search: the whole photo is transparent", 5000)
            return None
        w.canvas.finish_drag(close_shape=True)  # a stroke or polygon in progress: its own step first
        self.panel.flush()  # and the last find's sensitivity just moved, before a new one
        job = DetectJob(
            w.doc.image.copy(),
            self.detectors,
            w.settings.damage_threshold,
            alpha=w.doc.alpha,
            state=w.doc.image_state,
            doc=w.doc,
            grow=w.settings.damage_grow,
        )
        return self.runner.start(
            job,
            "Finding damage\u2026 (Esc cancels)",
            finished=self._on_finished,
            failed=self._on_failed,
            cancelled=self._on_cancelled,
        )

    def _on_finished(self, job: DetectJob, detection: Detection) -> None:
        w = self.window
        doc = w.doc
        if doc is None or doc is not job.doc or doc.image_state != job.state:
            self._message("The photo changed while finding damage; the result was dropped", 5000)
            return
        self.settle()  # the previous find keeps its sensitivity
        grow = w.settings.damage_grow if job.grow is None else job.grow
        found = FoundDamage(detection.damage, grow=grow, visible=detection.visible)
        try:
            found.apply(doc)
        except Exception as exc:  # noqa: BLE001 - a detector that answered for another size; out of memory
            w.show_error("Find Damage failed", f"{applying_error(exc)}\nNothing was changed.")
            return
        self.found, self._doc, self._in_history = found, doc, False
        self._record()
        # what was found shows on the photo as it is now: the mask hidden (H) or the split view
        # (Y) left it unseen while the panel said to review it
        w.set_split(False)
        w.masks.reveal()
        self.panel.show_values(found.threshold, found.grow, detection.default_threshold)
        self._show_panel()
        self.panel.set_adjustable(self.adjustable, self._summary(hint=True))
        then = " Review it in the Find Damage panel, then Fill." if found.added else ""
        self._message(f"{self._summary()}{then}", 8000)

    def _on_failed(self, _job: DetectJob, title: str, message: str) -> None:
        self.window.show_error(title, message)

    def _on_cancelled(self, _job: DetectJob) -> None:
        self._message("Find Damage cancelled; nothing changed", 4000)

    # ------------------------------------------------------------------ adjusting
    def adjust(self, threshold: float, grow: int) -> bool:
        """Show the latest find at ``threshold`` and ``grow`` (the panel's values, remembered
        for the next Find Damage); False when it cannot be adjusted any more."""
        w = self.window
        w.settings.damage_threshold = None if threshold == self.panel.default_threshold else threshold
        w.settings.damage_grow = grow
        # a stroke in progress is a change after the find: it settles it; a polygon being clicked
        # is no change yet and stays open (its corners were dropped)
        w.canvas.finish_held_drag()
        if not self.adjustable:
            return False
        assert self.found is not None and self._doc is not None
        try:
            self.found.apply(self._doc, threshold, grow)
        except (ValueError, RuntimeError) as exc:  # defensive: the rule above keeps this from happening
            self.settle()
            w.show_error("Cannot adjust Find Damage", str(exc))
            return False
        self._record()
        self.panel.set_adjustable(True, self._summary(hint=True))
        self._message(self._summary(), 4000)  # the find's first count stayed there for 8 s
        return True

    def _show_panel(self) -> None:
        if not self.panel.isVisible():
            self.panel.show()
            self.window.resizeDocks([self.panel], [_PANEL_WIDTH], Qt.Orientation.Horizontal)

    def _record(self) -> None:
        """Keep the history in step with the find: its step is there while it changes the mask
        (pushed the first time it does, taken off when it no longer does); remember where."""
        assert self.found is not None
        stack = self.window.undo_stack
        self._recording = True
        try:
            if self.found.changed_mask and not self._in_history:
                self._push(self.found)
                self._in_history = True
            elif not self.found.changed_mask and self._in_history:
                command = stack.command(stack.index() - 1)  # the top: the find is the latest step
                if isinstance(command, EditCommand) and command.edit is self.found:
                    command.setObsolete(True)
                    stack.undo()  # removes an obsolete command without undoing it
                    self._in_history = False
        finally:
            self._recording = False
        self._index = stack.index()

    def _summary(self, *, hint: bool = False) -> str:
        """What the latest find added (``hint``: and what to do next)."""
        found = self.found
        if found is None:
            return ""
        if not found.added:
            return "No new damage found at this sensitivity: raise it to find fainter damage."
        text = f"Find Damage added {found.added:,} px to the hole (grown by {found.grow} px)."
        return f"{text} {_REVIEW_HINT}" if hint else text

    def _message(self, text: str, msecs: int) -> None:
        self.window.statusBar().showMessage(text, msecs)
