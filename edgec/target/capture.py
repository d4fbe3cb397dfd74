"""Capture what C code in this process writes to its standard error (file descriptor 2):
TVM's C++ logs and the TFLite Micro interpreter's reports go there, not to ``sys.stderr``."""
from __future__ import annotations

import os
import sys
import tempfile


class Fd2Capture:
    """Capture C-level stderr (file descriptor 2)."""

    def __enter__(self):
        sys.stderr.flush()
        self.tmp = tempfile.TemporaryFile()
        self.saved = os.dup(2)
        os.dup2(self.tmp.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.tmp.seek(0)
        self.text = self.tmp.read().decode("utf-8", "replace")
        self.tmp.close()
