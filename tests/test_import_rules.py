"""The one-way import rules of the architecture, checked on the source (AST), so they cannot rot:

* engine imports no Qt and nothing from retoucher or trainer;
* trainer imports no Qt and nothing from retoucher;
* retoucher never imports torch (or torchvision) itself: it talks to engine.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RULES = {
    "engine": ("PySide6", "PyQt5", "PyQt6", "shiboken6", "retoucher", "trainer"),
    "trainer": ("PySide6", "PyQt5", "PyQt6", "shiboken6", "retoucher"),
    "retoucher": ("torch", "torchvision", "trainer"),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def violations(package: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for lineno, module in imported_modules(path):
            top = module.split(".")[0]
            if top in RULES[package]:
                bad.append(f"{path.relative_to(ROOT)}:{lineno} imports {module}")
    return bad


@pytest.mark.parametrize("package", sorted(RULES))
def test_import_rules(package):
    assert (ROOT / package / "__init__.py").is_file()
    assert violations(package) == []


def test_checker_catches_a_violation(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("import os\nfrom PySide6.QtCore import QObject\nimportlib.import_module('torch')\n")
    mods = [m for _, m in imported_modules(bad)]
    assert "PySide6.QtCore" in mods and "torch" in mods
