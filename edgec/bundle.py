"""A bundle: the directory `edgec build` writes (C sources, build files, report).

Written atomically: everything goes to a temporary sibling directory which
replaces the output directory in one rename at the end, so an interrupted or
failed build never leaves a half-written bundle.  Contents are deterministic
(sorted keys, no timestamps, no absolute paths).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

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


def write_tree(out: Path, files: dict[str, str | bytes]) -> Path:
    out = out.resolve() if out.exists() else Path(os.path.abspath(out))
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgecError(f"cannot create {parent}: {e.strerror}") from None
    if out.exists() and not out.is_dir():
        raise EdgecError(f"{out} exists and is not a directory")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    try:
        for rel in sorted(files):
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            data = files[rel]
            if isinstance(data, str):
                data = data.encode("utf-8")
            p.write_bytes(data)
        os.chmod(tmp, 0o755)
        old = None
        if out.exists():
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
    return out
