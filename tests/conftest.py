import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# every model and data file the tests read lives in the repository (models/NOTICE)
MODELS = ROOT / "models"
MLPERF = MODELS / "mlperf_tiny"
ONNX_MODELS = MODELS / "onnx"
SONAR = MODELS / "data" / "sonar.csv"
EXAMPLE_KWS = ROOT / "firmware_examples" / "kws" / "model" / "kws_ref_model.tflite"

sys.path.insert(0, str(ROOT))


def shared_model(rel: str) -> Path:
    """A model of the repository's models/ folder (a missing one is an error, not a skip)."""
    p = MODELS / rel
    assert p.exists(), f"{p} is missing from the repository"
    return p


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


@pytest.fixture
def edgec_cli():
    """Run the CLI as a user would, in a subprocess."""
    import subprocess

    def run(*args, cwd=None, env=None, timeout=600):
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([sys.executable, "-m", "edgec", *map(str, args)], cwd=cwd,
                              env=e, capture_output=True, text=True, timeout=timeout)
    return run
