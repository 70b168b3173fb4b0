"""Filling for the main window: one :class:`~.fill_worker.FillJob` at a time on the open photo.

:class:`FillController` starts a job from the document (its image and hole copied) on the window's
:class:`~.job_runner.JobRunner` (progress, busy cursor, cancel), turns the result into one undo
step (``filled``) when the photo is still the one the job was made from, and reports a failure
(``error``) or a cancel. It also keeps the status bar's engine labels: the device and model in
use, or the model that the first fill will load; and it can load the engine before the first
fill (:meth:`FillController.warm_up`, which the app does when it starts).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtWidgets import QLabel, QStatusBar

import engine

from ..document import Document
from ..transparent import why_nothing_to_fill
from .fill_worker import FillJob, InpainterCache
from .job_runner import JobRunner
from .worker import applying_error

if TYPE_CHECKING:  # pragma: no cover
    from engine.weights import WeightsInfo

__all__ = ["FillController", "model_texture", "weights_problem"]

log = logging.getLogger(__name__)


def weights_path(weights: str | None) -> Path:
    """The weight file a weights setting names ("" or None: the bundled model)."""
    return Path(weights).expanduser() if weights else engine.default_weights_path()


def weights_header(weights: str) -> tuple[WeightsInfo | None, str | None]:
    """The header of the weights file ``weights`` names ("" = the bundled model), read alone:
    ``(info, None)``, or ``(None, why it cannot be read)``."""
    try:
        return engine.read_weights_info(weights_path(weights)), None
    except (engine.WeightsError, OSError) as exc:
        return None, str(exc)


def model_texture(weights: str) -> float | None:
    """The own texture strength of the model in the weights file ``weights`` ("" = the bundled
    model), from its header alone; None when the file cannot be read."""
    info, _ = weights_header(weights)
    return None if info is None else info.texture


def weights_problem(weights: str) -> str | None:
    """Why the weights file ``weights`` cannot fill, from its header alone (missing, not a
    weight file, another kind: the damage detector's), or None. "" (the bundled model) is never
    refused here: nothing else can be chosen for it, and the first fill says what is wrong."""
    return weights_header(weights)[1] if weights else None


class FillController(QObject):
    """Fills the hole of a :class:`Document` in a worker thread.

    Signals: ``filled(Edit)`` with the fill's edit of the open photo (already applied: push it to
    the undo stack), ``error(title, message)`` for the user. ``document`` returns the photo open
    now; ``status`` shows the messages; ``runner`` runs the job (default: one of its own). The
    widgets :attr:`device_label` and :attr:`model_label` are for the status bar.
    """

    filled = Signal(object)
    error = Signal(str, str)
    _warmed = Signal()  # the engine loaded by warm_up (emitted in its thread, received in this one)

    def __init__(
        self,
        inpainters: InpainterCache,
        status: QStatusBar,
        document: Callable[[], Document | None],
        parent: QObject | None = None,
        *,
        runner: JobRunner | None = None,
    ) -> None:
        super().__init__(parent)
        self.inpainters = inpainters
        self.runner = runner or JobRunner(status, self)
        self._status = status
        self._document = document
        self.device_label = QLabel()
        self.model_label = QLabel()
        self._warm_pool = QThreadPool(self)  # warm_up's thread: the runner's is for the user's jobs
        self._warm_pool.setMaxThreadCount(1)
        self._warming = False  # warm_up was asked for
        self._loads = 0  # its loads started and not reported yet
        self._warmed.connect(self._on_warmed)

    @property
    def busy(self) -> bool:
        """A job runs (a fill or any other job of the runner)."""
        return self.runner.busy

    # ------------------------------------------------------------------ the engine's status
    def model_info(self) -> tuple[WeightsInfo | None, str | None]:
        """(WeightsInfo or None, a problem description or None) for the configured model,
        from the loaded Inpainter or else the weight file's header (no model is loaded)."""
        inp = self.inpainters.loaded
        if inp is not None:
            return inp.info, None
        path = weights_path(self.inpainters.weights)
        try:
            return engine.read_weights_info(path), None
        except engine.WeightsError as exc:
            if self.inpainters.weights is None and not path.exists():
                return None, f"The bundled model is missing ({path}). Choose a weights file in Preferences."
            return None, str(exc)

    def refresh_model_status(self) -> None:
        """The device and model labels: the loaded engine's, else what the first fill loads."""
        inp = self.inpainters.loaded
        if inp is not None:
            self.device_label.setText(f"Device: {inp.device_name}")
            self.model_label.setText(f"Model: {inp.name}")
            return
        when = "loading\u2026" if self._loads else "loads on first fill"
        self.device_label.setText(f"Device: {self.inpainters.device} ({when})")
        info, problem = self.model_info()
        self.model_label.setText(f"Model: {info.name}" if info else "Model: none \u2014 see Preferences")
        self.model_label.setToolTip(problem or "")

    def warm_up(self) -> None:
        """Load the engine now, in a thread of its own, so that the first fill does not wait
        for it (torch's import and the model: about 1.9 s of a first fill's 2.4 s on the 2-core
        development machine); again after each :meth:`reconfigured`. A fill started meanwhile
        waits for the load in progress, and an engine that cannot be loaded is left for the
        first fill to report."""
        self._warming = True
        self._loads += 1
        self.refresh_model_status()
        cache = self.inpainters

        def load() -> None:
            try:
                cache.get()
            except Exception as exc:  # noqa: BLE001 - the first fill says it to the user
                log.debug("the engine was not loaded ahead of the first fill: %s", exc)
            with contextlib.suppress(RuntimeError):  # the window closed while the engine loaded
                self._warmed.emit()

        self._warm_pool.start(load)

    def _on_warmed(self) -> None:
        """A load of :meth:`warm_up` ended (loaded, or left for the first fill to report)."""
        self._loads -= 1
        self.refresh_model_status()

    def reconfigured(self) -> None:
        """The weights or device setting may have changed: the labels follow, and the engine
        chosen now is loaded ahead when :meth:`warm_up` was asked for."""
        self.refresh_model_status()
        if self._warming and self.inpainters.loaded is None:
            self.warm_up()

    # ------------------------------------------------------------------ running
    def start(self, doc: Document) -> FillJob | None:
        """Fill the hole painted on ``doc`` (None, with a word why, when there is nothing to
        fill or a job runs already). The result arrives as ``filled``."""
        if self.busy:
            return None
        if not doc.has_hole:
            self._status.showMessage("Paint over what should go first (brush or rectangle), then Fill", 4000)
            return None
        reason = why_nothing_to_fill(doc.mask, doc.alpha)
        if reason is not None:
            self.error.emit("Cannot fill", f"{reason[0].upper()}{reason[1:]}.")
            return None
        job = FillJob(
            doc.image.copy(),
            doc.mask.copy(),
            self.inpainters,
            alpha=doc.alpha,
            state=doc.image_state,
            doc=doc,
        )
        job.signals.loaded.connect(self._on_engine_loaded)
        return self.runner.start(
            job,
            "Filling\u2026 (Esc cancels)",
            finished=self._on_finished,
            failed=self._on_failed,
            cancelled=self._on_cancelled,
        )

    # ------------------------------------------------------------------ the job's reports
    def _on_engine_loaded(self, _inpainter: object) -> None:
        self.refresh_model_status()

    def _on_finished(self, job: FillJob, result: np.ndarray) -> None:
        doc = self._document()
        if doc is None or doc is not job.doc or doc.image_state != job.state:
            self._status.showMessage("The photo changed while filling; the result was dropped", 5000)
            return
        try:
            edit = doc.apply_fill(result, job.hole)
        except Exception as exc:  # noqa: BLE001 - out of memory above all: it went to stderr alone,
            # and the status bar said "Filling..." for good
            self.error.emit(
                "Cannot apply the fill", f"{applying_error(exc)}\nThe photo and its hole are as they were."
            )
            return
        if edit is not None:
            self.filled.emit(edit)
        self._status.showMessage("Filled. Compare with \\ (or Y, split), undo with Ctrl+Z", 4000)

    def _on_failed(self, _job: FillJob, title: str, message: str) -> None:
        self.refresh_model_status()
        self.error.emit(title, message)

    def _on_cancelled(self, _job: FillJob) -> None:
        self._status.showMessage("Fill cancelled; nothing changed", 4000)
