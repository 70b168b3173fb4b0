"""The one-way import rules of the architecture, checked on the source (AST), so they cannot rot:

* engine imports no Qt and nothing from retoucher or trainer;
* trainer imports no Qt and nothing from retoucher;
* retoucher never imports torch (or torchvision) itself: it talks to engine;
* Qt lives in ``retoucher/qt/``: every other module of retoucher (document, batch, self-test, ...)
  imports neither a Qt binding nor ``retoucher.qt``, so it runs headless. The one door is
  ``retoucher/__main__.py``: the function that starts the app imports ``retoucher.qt`` when it runs
  (never at module level, and never a Qt binding itself).

An import counts wherever it is (inside a function too); relative imports are resolved against the
file's package, and ``importlib.import_module`` / ``__import__`` with a literal name count as well.
"""

import ast
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent

QT = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "shiboken2")
RULES = {  # package -> the modules (and their submodules) it must not import
    "engine": (*QT, "retoucher", "trainer"),
    "trainer": (*QT, "retoucher"),
    "retoucher": ("torch", "torchvision", "trainer"),
}
QT_LAYER = "retoucher.qt"
GUI_ENTRY = "retoucher/__main__.py"  # may import QT_LAYER lazily, inside the function starting the app


class Import(NamedTuple):
    lineno: int
    module: str  # absolute dotted name
    lazy: bool  # inside a function body: runs when the function is called, not on import


def _package_of(path: Path, root: Path) -> list[str]:
    """The dotted package a file belongs to, as parts (its folder, relative to ``root``)."""
    return list(path.relative_to(root).parent.parts)


class _ImportFinder(ast.NodeVisitor):
    def __init__(self, package: list[str]) -> None:
        self.package = package
        self.depth = 0  # how many function bodies deep the visitor is
        self.found: list[Import] = []

    def _add(self, node: ast.AST, module: str) -> None:
        self.found.append(Import(node.lineno, module, self.depth > 0))

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            up = node.level - 1
            if up > len(self.package) - 1:
                raise ValueError(f"line {node.lineno}: relative import beyond the top-level package")
            parts = self.package[: len(self.package) - up] + ([node.module] if node.module else [])
            base = ".".join(parts)
        else:
            base = node.module or ""
        self._add(node, base)
        for alias in node.names:  # `from retoucher import qt` imports the module retoucher.qt
            if alias.name != "*":
                self._add(node, f"{base}.{alias.name}")

    def visit_Call(self, node: ast.Call) -> None:
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if (
            name in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            self._add(node, node.args[0].value)
        self.generic_visit(node)


def imported_modules(path: Path, root: Path = ROOT) -> list[Import]:
    """Every import in the file at ``path`` (a file of a package under ``root``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    finder = _ImportFinder(_package_of(path, root))
    finder.visit(tree)
    return finder.found


def is_within(module: str, names: tuple[str, ...]) -> bool:
    """True when ``module`` is one of ``names`` or a submodule of one."""
    return any(module == n or module.startswith(n + ".") for n in names)


def _report(bad: dict[tuple[str, int], str]) -> list[str]:
    return [f"{rel}:{lineno} imports {module}" for (rel, lineno), module in sorted(bad.items())]


def violations(package: str, root: Path = ROOT) -> list[str]:
    bad: dict[tuple[str, int], str] = {}
    for path in sorted((root / package).rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for imp in imported_modules(path, root):
            if is_within(imp.module, RULES[package]):
                bad.setdefault((rel, imp.lineno), imp.module)
    return _report(bad)


def qt_free_files(root: Path = ROOT) -> list[Path]:
    """Every module of retoucher outside its Qt layer (``retoucher/qt/``)."""
    package = root / "retoucher"
    return [p for p in sorted(package.rglob("*.py")) if p.relative_to(package).parts[0] != "qt"]


def qt_free_violations(root: Path = ROOT) -> list[str]:
    bad: dict[tuple[str, int], str] = {}
    for path in qt_free_files(root):
        rel = path.relative_to(root).as_posix()
        for imp in imported_modules(path, root):
            opens_the_gui = rel == GUI_ENTRY and imp.lazy
            if is_within(imp.module, QT) or (is_within(imp.module, (QT_LAYER,)) and not opens_the_gui):
                bad.setdefault((rel, imp.lineno), imp.module)
    return _report(bad)


@pytest.mark.parametrize("package", sorted(RULES))
def test_import_rules(package):
    assert (ROOT / package / "__init__.py").is_file()
    assert violations(package) == []


def test_qt_lives_in_retoucher_qt_only():
    names = [p.relative_to(ROOT).as_posix() for p in qt_free_files()]
    # The glob sees the Qt-free modules (batch is a module or a package) and none of the Qt layer.
    assert {"retoucher/__init__.py", "retoucher/document.py", GUI_ENTRY} <= set(names)
    assert any(n.startswith("retoucher/batch") for n in names)
    assert not any(n.startswith("retoucher/qt/") for n in names)
    assert qt_free_violations() == []


def test_the_qt_free_modules_import_no_qt_when_imported():
    """What the rule is for, seen from outside: importing every module of retoucher outside
    ``retoucher/qt/`` loads no Qt binding (nor through engine or a library)."""
    modules = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in qt_free_files()
        # A sub-package's __main__ may run its command on import; retoucher/__main__.py is guarded.
        if p.name != "__main__.py" or p.parent == ROOT / "retoucher"
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {QT!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip() == "[]"


def test_checker_catches_a_violation(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("import os\nfrom PySide6.QtCore import QObject\nimportlib.import_module('torch')\n")
    mods = [imp.module for imp in imported_modules(bad, tmp_path)]
    assert "PySide6.QtCore" in mods and "torch" in mods


def test_checker_resolves_relative_imports_and_sees_imports_in_functions(tmp_path):
    (tmp_path / "retoucher" / "batch").mkdir(parents=True)
    path = tmp_path / "retoucher" / "batch" / "run.py"
    path.write_text(
        "from . import report\nfrom ..qt import canvas\nfrom .. import qt\n\n"
        "def f():\n    from .. import document\n    return lambda: __import__('PySide6')\n"
    )
    assert imported_modules(path, tmp_path) == [
        (1, "retoucher.batch", False),
        (1, "retoucher.batch.report", False),
        (2, "retoucher.qt", False),
        (2, "retoucher.qt.canvas", False),
        (3, "retoucher", False),
        (3, "retoucher.qt", False),
        (6, "retoucher", True),
        (6, "retoucher.document", True),
        (7, "PySide6", True),
    ]


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_qt_rule_catches_qt_in_a_qt_free_module(tmp_path):
    _write(
        tmp_path,
        {
            "retoucher/__init__.py": "",
            "retoucher/qt/__init__.py": "from PySide6.QtWidgets import QWidget\n",  # the Qt layer: allowed
            "retoucher/qt/canvas.py": "import shiboken6\n",
            "retoucher/document.py": "import numpy\n\ndef f():\n    from PySide6 import QtGui\n",
            "retoucher/batch/__init__.py": "from .run import main\n",
            "retoucher/batch/run.py": "from ..qt.canvas import Canvas\n",
            "retoucher/batch/gui.py": "from retoucher import qt\n",
            "retoucher/selftest.py": "import shiboken6\n",
            "retoucher/__main__.py": (
                "from .document import Document\n\n"
                "def main():\n    from retoucher.qt.app import run_app\n    from PySide6 import QtCore\n"
            ),
        },
    )
    assert qt_free_violations(tmp_path) == [
        "retoucher/__main__.py:5 imports PySide6",  # the GUI entry may reach retoucher.qt, not Qt itself
        "retoucher/batch/gui.py:1 imports retoucher.qt",
        "retoucher/batch/run.py:1 imports retoucher.qt.canvas",
        "retoucher/document.py:4 imports PySide6",
        "retoucher/selftest.py:1 imports shiboken6",
    ]
    # The same import at module level of the GUI entry is not lazy, so it is not allowed.
    _write(tmp_path, {"retoucher/__main__.py": "from .qt import app\n"})
    assert qt_free_violations(tmp_path) == [
        "retoucher/__main__.py:1 imports retoucher.qt",
        "retoucher/batch/gui.py:1 imports retoucher.qt",
        "retoucher/batch/run.py:1 imports retoucher.qt.canvas",
        "retoucher/document.py:4 imports PySide6",
        "retoucher/selftest.py:1 imports shiboken6",
    ]
