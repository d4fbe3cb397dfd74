"""A bundle: the directory `edgec build` writes (C sources, build files, report).

Written atomically: everything goes to a temporary sibling directory which
replaces the output directory in one step at the end (an atomic exchange on
Linux, a rename otherwise), so an interrupted or failed build never leaves a
half-written bundle and a previous bundle at that path survives a failed build.
An existing output directory is only replaced when it is empty or an edgec
bundle.  (A SIGKILL can leave the hidden temporary ``.NAME.tmp-*`` sibling
behind; never a partial ``NAME``.)  Contents are deterministic
(sorted keys, no timestamps, no absolute paths).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import interrupt
from .errors import EdgecError


def dumps_json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


@dataclass
class Bundle:
    name: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    report: dict = field(default_factory=dict)

    def add(self, path: str, content: str | bytes) -> None:
        if path.startswith("/") or ".." in Path(path).parts:
            raise ValueError(path)
        self.files[path] = content

    def write(self, out_dir) -> Path:
        out = Path(out_dir)
        files = dict(self.files)
        files["report.json"] = dumps_json(self.report)
        return write_tree(out, files)


def _replaceable(out: Path) -> bool:
    """Only an empty directory or a previous edgec bundle may be replaced: ``-o .`` or
    ``-o ~/project`` must never delete a user's files."""
    try:
        entries = list(out.iterdir())
    except OSError:
        return False
    if not entries:
        return True
    try:
        schema = json.loads((out / "report.json").read_text()).get("schema", "")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(schema, str) and schema.startswith("edgec-")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one atomic step (Linux renameat2 RENAME_EXCHANGE).
    False where the system cannot (other OSes, old kernels, some file systems)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def write_tree(out: Path, files: dict[str, str | bytes]) -> Path:
    out = out.resolve() if out.exists() else Path(os.path.abspath(out))
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgecError(f"cannot create {parent}: {e.strerror}") from None
    if out.exists() and not out.is_dir():
        raise EdgecError(f"{out} exists and is not a directory")
    if out.exists() and not _replaceable(out):
        raise EdgecError(f"{out} exists and is neither empty nor an edgec bundle (no edgec "
                         "report.json): not replacing it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    interrupt.track(tmp)  # removed by the supervisor if a signal finds edgec stuck in C code
    try:
        for rel in sorted(files):
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            data = files[rel]
            if isinstance(data, str):
                data = data.encode("utf-8")
            p.write_bytes(data)
        os.chmod(tmp, 0o755)
        if out.exists() and _exchange(tmp, out):
            # one atomic step: ``out`` is the new bundle, ``tmp`` now holds the old one
            shutil.rmtree(tmp, ignore_errors=True)
            return out
        old = None
        if out.exists():
            # fallback: two renames (a crash between them leaves the previous bundle in
            # .NAME.old-PID next to ``out``)
            old = parent / f".{out.name}.old-{os.getpid()}"
            if old.exists():
                shutil.rmtree(old)
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        interrupt.untrack(tmp)
    return out
