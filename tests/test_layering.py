"""The one-way data flow: `model/` never imports gymnasium, pygame or lv2_env."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_MODEL = {"gymnasium", "gym", "pygame", "lv2_env", "agents"}


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_model_sources_do_not_import_the_env_side():
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_top_levels(path) & FORBIDDEN_IN_MODEL)
        for path in (ROOT / "model").rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_importing_model_loads_none_of_them():
    code = (
        "import sys, model, model.checkpoint, model.generator, model.text, model.weights; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'gymnasium', 'pygame', 'lv2_env', 'agents'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
