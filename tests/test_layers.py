"""The layers point one way and no import cycle is left: import-linter checks the contracts
in pyproject.toml ([tool.importlinter]) on this checkout's edgec."""
import os
import subprocess
import sys

from conftest import ROOT

# the venv's import-linter, as its `lint-imports` script runs it
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def test_import_contracts_are_kept():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", LINT, "--config", str(ROOT / "pyproject.toml"),
                        "--no-cache", "--no-logo"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout, r.stdout[-4000:]
