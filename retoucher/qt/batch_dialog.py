"""The batch dialog: the GUI face of ``retoucher batch`` (it calls the same
:func:`retoucher.batch.run_batch`), run in a worker thread with progress, cancel and a summary.

Holes come from masks (a folder, one file, a rectangle, a centred hole), from the damage the
detector finds in each photo (``--find-damage``: at the sensitivity and grow of the app's Find
Damage), or from both together."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QThreadPool, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.formats import DEFAULT_QUALITY

from ..batch import OUTPUT_FORMATS, BatchError, BatchOptions, BatchReport, MaskSpec, run_batch
from ..document import printable
from ..logged import logged_warnings
from .damage_worker import DetectorCache
from .dialogs import path_row
from .file_filters import MASK_FILTER
from .fill_worker import InpainterCache
from .settings import MAX_JPEG_QUALITY, MIN_JPEG_QUALITY, Settings
from .worker import Job, JobSignals, describe_error

MAX_NOTES = 200
"""The most warnings the summary lists (a folder of 16-bit scans gives one per photo)."""

MASK_KINDS = (
    ("dir", "Mask folder (one PNG per photo)", "Mask folder:"),
    ("file", "One mask for every photo", "Mask file:"),
    ("rect", "Rectangle", "Rectangle (px):"),
    ("center", "Centred hole", "Hole size (px):"),
    ("none", "No masks: only the damage found", ""),
)
"""Where the holes come from: (kind, the choice's text, the label of its row)."""


class BatchSignals(JobSignals):
    progress = Signal(int, int, str)  # photos finished, photos in all, the current photo's name
    # finished(BatchReport), failed(title, message): see JobSignals; a cancelled batch finishes
    # with report.cancelled set


class BatchJob(Job):
    """Runs :func:`retoucher.batch.run_batch` with the app's (cached) Inpainter and damage
    detector."""

    signals: BatchSignals

    def __init__(
        self, options: BatchOptions, cache: InpainterCache | None, detectors: DetectorCache | None = None
    ) -> None:
        super().__init__(BatchSignals())
        self.options = options
        self.cache = cache
        self.detectors = detectors

    def work(self) -> BatchReport:
        # The app's own (cached) engines, got when a photo needs them (a finished batch, or one
        # where no damage is found, loads no model); run_batch loads them from the options otherwise.
        cache, detectors = self.cache, self.detectors
        with logged_warnings() as said:  # `retoucher batch` prints them; the summary says them
            report = run_batch(
                self.options,
                inpainter_factory=None if cache is None else lambda _device: cache.get(),
                detector_factory=None if detectors is None else lambda _weights, _device: detectors.get(),
                progress=self.signals.progress.emit,
                cancel=self.cancel_event.is_set,
            )
        report.notes = said
        return report

    def describe(self, exc: Exception) -> tuple[str, str]:
        # A device the machine lacks is worded for the app (Preferences), as a fill's is; any
        # other BatchError's message says it all (no title).
        from engine.distributed import DeviceError

        if isinstance(exc.__cause__, DeviceError):
            return describe_error(exc.__cause__)
        return ("", str(exc)) if isinstance(exc, BatchError) else super().describe(exc)


class BatchDialog(QDialog):
    """Input folder, output folder, where the holes come from (masks and/or the damage found),
    format; Run, Cancel, summary."""

    CLOSE_WAIT_MS = 2000  # closing waits this long for a cancelled batch to stop, then lets it end

    def __init__(
        self,
        settings: Settings,
        cache: InpainterCache | None = None,
        parent: QWidget | None = None,
        detectors: DetectorCache | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch retouch")
        self.resize(620, 540)
        self.settings = settings
        self.cache = cache
        self.detectors = detectors
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.job: BatchJob | None = None
        self.report: BatchReport | None = None
        self._close_when_stopped = False  # closed while a step ran on: close when it ends

        form = QFormLayout()
        self.input_edit = QLineEdit(str(settings.value("batch/input", "") or ""))
        self.output_edit = QLineEdit(str(settings.value("batch/output", "") or ""))
        form.addRow(
            "Photos folder:",
            path_row(self.input_edit, lambda: self._pick_dir(self.input_edit), "Photos folder"),
        )
        form.addRow(
            "Output folder:",
            path_row(self.output_edit, lambda: self._pick_dir(self.output_edit), "Output folder"),
        )

        self._add_mask_rows(form)
        self._add_output_rows(form)

        self.progress = QProgressBar()
        self.progress.setValue(0)
        self.current_label = QLabel("")
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setPlaceholderText("The summary appears here when the batch ends.")

        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.run_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.current_label)
        layout.addWidget(self.summary, 1)
        layout.addLayout(buttons)

    def _add_mask_rows(self, form: QFormLayout) -> None:
        """Where the holes come from: the kind, and a row per kind (folder, file, rectangle,
        centred hole) under a label that follows it; all remembered."""
        settings = self.settings
        self.mask_kind = QComboBox()
        for kind, text, _label in MASK_KINDS:
            self.mask_kind.addItem(text, kind)
        self.mask_stack = QStackedWidget()
        self.mask_dir_edit = QLineEdit(str(settings.value("batch/mask_dir", "") or ""))
        self.mask_file_edit = QLineEdit(str(settings.value("batch/mask_file", "") or ""))
        self.mask_stack.addWidget(
            self._wrap(
                path_row(self.mask_dir_edit, lambda: self._pick_dir(self.mask_dir_edit), "Mask folder")
            )
        )
        self.mask_stack.addWidget(
            self._wrap(path_row(self.mask_file_edit, self._pick_mask_file, "Mask file"))
        )
        self.rect_spins = [self._spin(0, 100000, v) for v in (0, 0, 64, 64)]
        rect_row = QHBoxLayout()
        for label, spin in zip(("x", "y", "width", "height"), self.rect_spins):
            rect_row.addWidget(self._buddy(label, spin, f"Hole {label}"))
            rect_row.addWidget(spin)
        self.mask_stack.addWidget(self._wrap(rect_row))
        self.center_spins = [self._spin(1, 100000, 64), self._spin(1, 100000, 64)]
        centre_row = QHBoxLayout()
        for label, spin in zip(("width", "height"), self.center_spins):
            centre_row.addWidget(self._buddy(label, spin, f"Centred hole {label}"))
            centre_row.addWidget(spin)
        centre_row.addStretch(1)
        self.mask_stack.addWidget(self._wrap(centre_row))
        self.mask_stack.addWidget(QWidget())  # no masks: nothing to set
        self.mask_label = QLabel(MASK_KINDS[0][2])
        self.mask_kind.currentIndexChanged.connect(self._show_mask_kind)
        form.addRow("Holes:", self.mask_kind)
        form.addRow(self.mask_label, self.mask_stack)
        # As `retoucher batch --find-damage`, at the app's Find Damage sensitivity and grow.
        self.find_damage_check = QCheckBox("Find dust and scratches and fill them too")
        self.find_damage_check.setToolTip(
            "The damage detector marks dust, scratches and spots in each photo (at the sensitivity "
            "and grow last used in Find Damage); they are filled together with the masks' holes. "
            "With a mask folder, a photo without a mask gets only the damage found."
        )
        self.find_damage_check.setChecked(self.settings.flag("batch/find_damage"))
        form.addRow("", self.find_damage_check)
        self._restore_spins(self.rect_spins, "batch/rect")
        self._restore_spins(self.center_spins, "batch/center")
        self.set_mask_kind(str(settings.value("batch/mask_kind", "dir") or "dir"))

    def _add_output_rows(self, form: QFormLayout) -> None:
        """Output format, JPEG/WebP quality (off: a JPEG keeps its own compression), overwrite and
        sub-folders."""
        settings = self.settings
        self.format_combo = QComboBox()
        for f in OUTPUT_FORMATS:
            self.format_combo.addItem("same as the photo" if f == "same" else f.upper(), f)
        remembered = self.format_combo.findData(str(settings.value("batch/format", "same") or "same"))
        self.format_combo.setCurrentIndex(max(remembered, 0))
        form.addRow("Output format:", self.format_combo)
        # Like `retoucher batch` without --quality, a JPEG written from a JPEG keeps its own
        # compression unless a quality is set here (preset from the preferences).
        self.quality_check = QCheckBox("Re-encode at quality")
        self.quality_check.setToolTip(
            "Off: a JPEG written from a JPEG keeps the original's quantisation and chroma "
            f"subsampling (other outputs: quality {DEFAULT_QUALITY}). On: JPEG and WebP outputs "
            "use this quality."
        )
        self.quality_spin = self._spin(MIN_JPEG_QUALITY, MAX_JPEG_QUALITY, settings.jpeg_quality)
        self.quality_check.toggled.connect(self.quality_spin.setEnabled)
        self.quality_check.setChecked(not settings.jpeg_keep_original)
        self.quality_spin.setEnabled(self.quality_check.isChecked())
        self.quality_spin.setAccessibleName("JPEG/WebP quality")
        quality_row = QHBoxLayout()
        quality_row.addWidget(self.quality_check)
        quality_row.addWidget(self.quality_spin)
        quality_row.addStretch(1)
        form.addRow("JPEG/WebP quality:", quality_row)
        self.overwrite_check = QCheckBox("Redo photos whose output exists")
        self.recursive_check = QCheckBox("Include sub-folders")
        # not remembered: ticked from an earlier batch, it wrote over outputs (retouched by hand
        # since, perhaps) without being chosen again
        self.recursive_check.setChecked(settings.flag("batch/recursive"))
        form.addRow("", self.overwrite_check)
        form.addRow("", self.recursive_check)

    # ------------------------------------------------------------------ widgets
    @staticmethod
    def _wrap(layout: QHBoxLayout) -> QWidget:
        w = QWidget()
        layout.setContentsMargins(0, 0, 0, 0)
        w.setLayout(layout)
        return w

    @staticmethod
    def _buddy(text: str, spin: QSpinBox, name: str) -> QLabel:
        """A box's short label, tied to it; ``name`` is what a screen reader says for the box."""
        label = QLabel(text)
        label.setBuddy(spin)
        spin.setAccessibleName(name)
        return label

    @staticmethod
    def _spin(lo: int, hi: int, value: int) -> QSpinBox:
        s = QSpinBox()
        s.setRange(lo, hi)
        s.setValue(value)
        return s

    def _pick_dir(self, edit: QLineEdit) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text() or str(Path.home()))
        if path:
            edit.setText(path)

    def _pick_mask_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Choose a mask",
            self.mask_file_edit.text() or str(Path.home()),
            MASK_FILTER,
        )
        if path:
            self.mask_file_edit.setText(path)

    def set_mask_kind(self, kind: str) -> None:
        self.mask_kind.setCurrentIndex(max(self.mask_kind.findData(kind), 0))

    def _show_mask_kind(self, index: int) -> None:
        self.mask_stack.setCurrentIndex(index)
        self.mask_label.setText(MASK_KINDS[index][2])

    def _restore_spins(self, spins: list[QSpinBox], key: str) -> None:
        """The values last used (``"x,y,w,h"``); a missing or damaged entry keeps the defaults."""
        parts = str(self.settings.value(key, "") or "").split(",")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            return
        if len(values) == len(spins):
            for spin, v in zip(spins, values):
                spin.setValue(v)

    def _remember(self, options: BatchOptions) -> None:
        """The form's folders, holes and output choices, for next time."""
        for key, value in (
            ("batch/input", str(options.input_dir)),
            ("batch/output", str(options.output_dir)),
            ("batch/mask_kind", self.mask_kind.currentData()),
            ("batch/mask_dir", self.mask_dir_edit.text().strip()),
            ("batch/mask_file", self.mask_file_edit.text().strip()),
            ("batch/rect", ",".join(str(s.value()) for s in self.rect_spins)),
            ("batch/center", ",".join(str(s.value()) for s in self.center_spins)),
            ("batch/find_damage", options.find_damage),
            ("batch/format", self.format_combo.currentData()),
            ("batch/recursive", self.recursive_check.isChecked()),
        ):
            self.settings.set_value(key, value)

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self.job is not None

    def options(self) -> BatchOptions:
        """The batch as the form describes it; ValueError with a message when incomplete."""
        if not self.input_edit.text().strip():
            raise ValueError("Choose the folder of photos.")
        if not self.output_edit.text().strip():
            raise ValueError("Choose an output folder.")
        kind = self.mask_kind.currentData()
        find_damage = self.find_damage_check.isChecked()
        spec: MaskSpec | None = None
        if kind == "none":
            if not find_damage:
                raise ValueError(
                    "Choose where the holes come from, or tick \u2018Find dust and scratches\u2019."
                )
        elif kind == "dir":
            if not self.mask_dir_edit.text().strip():
                raise ValueError("Choose the folder of masks.")
            spec = MaskSpec("dir", self.mask_dir_edit.text().strip())
        elif kind == "file":
            if not self.mask_file_edit.text().strip():
                raise ValueError("Choose the mask file.")
            spec = MaskSpec("file", self.mask_file_edit.text().strip())
        elif kind == "rect":
            spec = MaskSpec("rect", tuple(s.value() for s in self.rect_spins))
        else:
            spec = MaskSpec("center", tuple(s.value() for s in self.center_spins))
        settings = self.settings
        return BatchOptions(
            input_dir=Path(self.input_edit.text().strip()),
            output_dir=Path(self.output_edit.text().strip()),
            masks=spec,
            weights=Path(self.settings.weights) if self.settings.weights else None,
            device=self.settings.device,
            format=self.format_combo.currentData(),
            overwrite=self.overwrite_check.isChecked(),
            recursive=self.recursive_check.isChecked(),
            quality=self.quality_spin.value() if self.quality_check.isChecked() else None,
            find_damage=find_damage,
            threshold=settings.damage_threshold if find_damage else None,
            dilate=settings.damage_grow,
            texture=settings.texture,
            mirror=settings.mirror,
        )

    def start(self) -> BatchJob | None:
        if self.running:
            return None
        try:
            options = self.options()
        except ValueError as exc:
            self.summary.setPlainText(str(exc))
            return None
        self._remember(options)
        self.report = None
        job = BatchJob(options, self.cache, self.detectors)
        job.signals.progress.connect(self._on_progress)
        job.signals.finished.connect(self._on_finished)
        job.signals.failed.connect(self._on_failed)
        self.job = job
        self.summary.setPlainText(
            f"Retouching {options.input_dir} \u2192 {options.output_dir} ({self._describe_holes(options)})\u2026"
        )
        self.progress.setRange(0, 0)
        self.current_label.setText("Starting\u2026")
        self._set_running(True)
        job.start_in(self.pool)
        return job

    @staticmethod
    def _describe_holes(options: BatchOptions) -> str:
        parts = [] if options.masks is None else [options.masks.describe()]
        if options.find_damage:
            parts.append("the dust and scratches found")
        return " + ".join(parts)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.current_label.setText("Cancelling after the current photo\u2026")

    def _set_running(self, on: bool) -> None:
        self.run_button.setEnabled(not on)
        self.cancel_button.setEnabled(on)
        self.close_button.setEnabled(not on)

    def _on_progress(self, finished: int, total: int, name: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(finished)
        self.current_label.setText(f"{finished} of {total}: {name}")

    def _finish(self) -> None:
        self.job = None
        self._set_running(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)

    def _on_finished(self, report: BatchReport) -> None:
        self._finish()
        self.report = report
        lines = [report.summary()]
        if report.total == 0:
            lines.append(
                "No photos were found in the folder"
                + ("." if self.recursive_check.isChecked() else " (sub-folders are not included).")
            )
        if report.skipped:
            lines.append("Skipped photos already have an output (tick \u2018Redo\u2019 to redo them).")
        if report.cancelled:
            lines.append("Cancelled: finished outputs are kept; run again to resume.")
        if report.notes:
            shown = report.notes[:MAX_NOTES]
            lines += ["", f"Notes ({len(report.notes)}):", *(f"  {printable(n)}" for n in shown)]
            if len(report.notes) > len(shown):
                lines.append(f"  \u2026 and {len(report.notes) - len(shown)} more")
        self.summary.setPlainText("\n".join(lines))
        self.current_label.setText("Cancelled" if report.cancelled else "Finished")
        self._closing_after_stop()

    def _on_failed(self, title: str, message: str) -> None:
        self._finish()
        text = f"{title}\n\n{message}" if title else message
        self.summary.setPlainText(f"The batch could not run:\n{text}")
        self.current_label.setText("Failed")
        self._closing_after_stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.job is not None:  # closing the window stops the batch (outputs so far are kept)
            self.job.cancel()
            if not self.pool.waitForDone(self.CLOSE_WAIT_MS):
                # a step that does not look at cancel (a model loading, one large fill): the
                # dialog stays, and with it the batch's hold on the app, and closes itself when
                # the step ends (the GUI is not held up waiting for it)
                self._close_when_stopped = True
                self.current_label.setText("Stopping\u2026 the current photo ends first")
                event.ignore()
                return
            self._finish()
        super().closeEvent(event)

    def _closing_after_stop(self) -> None:
        if self._close_when_stopped:
            self.close()

    def reject(self) -> None:  # Esc: cancel a running batch first, close when idle
        if self.running:
            self.cancel()
            return
        super().reject()
