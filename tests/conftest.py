import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MLPERF = SHARED / "models" / "mlperf_tiny"
ONNX_MODELS = SHARED / "models" / "onnx"
EXAMPLE_KWS = ROOT / "firmware_examples" / "kws" / "model" / "kws_ref_model.tflite"

sys.path.insert(0, str(ROOT))


def shared_model(rel: str) -> Path:
    p = SHARED / "models" / rel
    if not p.exists():
        pytest.skip(f"{p} not available (../shared missing)")
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
