"""The runtime stands alone: every module of lanenet_ros imports with lanenet_train (and torch) unimportable,
as after a colcon install, which installs lanenet_ros only."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
sys.modules["lanenet_train"] = None  # `import lanenet_train` now raises ImportError
sys.modules["torch"] = None
import lanenet_ros
names = [m.name for m in pkgutil.walk_packages(lanenet_ros.__path__, "lanenet_ros.")]
for name in names:
    importlib.import_module(name)
print(len(names), "modules")
"""


def test_every_runtime_module_imports_without_the_training_toolkit():
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERY_MODULE], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[0]) > 30  # the subpackages were walked, not just the top


def test_no_runtime_module_names_the_training_toolkit_in_an_import():
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "lanenet_ros").rglob("*.py")
                 if any(line.strip().startswith(("import lanenet_train", "from lanenet_train"))
                        for line in path.read_text(encoding="utf-8").splitlines())]
    assert offenders == []
