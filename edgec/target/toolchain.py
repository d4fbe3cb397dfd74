"""Compiling bundles for a target: host gcc, arm-none-eabi-gcc, riscv64-unknown-elf-gcc.

Flags come from the target file plus the code-size flags of the build options
(``-Os`` by default, ``-ffunction-sections -fdata-sections`` and
``-Wl,--gc-sections``).  Model code is always compiled with
``-std=c99 -Wall -Wextra -Werror``: a warning in generated code is a bug.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..ir.errors import ToolchainError
from .targets import Target

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror"]


def which(tool: str, package: str = "") -> str:
    path = shutil.which(tool)
    if not path:
        hint = f" (Debian: apt-get install {package})" if package else ""
        raise ToolchainError(f"{tool} not found{hint}")
    return path


def cc(target: Target) -> str:
    return which(target.cc, target.package)


def tool(target: Target, name: str) -> str:
    """A binutils tool next to the target's compiler (size, objcopy, ar)."""
    if target.is_host:
        return which(name, "binutils")
    prefix = target.cc[: -len("gcc")] if target.cc.endswith("gcc") else ""
    return which(prefix + name, target.package)


def run(cmd: list[str], cwd: Path | None = None, timeout: float = 600, what: str = "") -> str:
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{what or cmd[0]} timed out after {timeout:.0f} s") from None
    except OSError as e:
        raise ToolchainError(f"cannot run {cmd[0]}: {e.strerror}") from None
    if p.returncode != 0:
        out = (p.stderr or p.stdout).strip()
        lines = out.splitlines()
        head = "\n".join(lines[:40])
        raise ToolchainError(f"{what or cmd[0]} failed (exit {p.returncode}):\n{head}")
    return p.stdout


def opt_flags(opt_level: str = "s", lto: bool = False) -> list[str]:
    f = [f"-O{opt_level}", "-ffunction-sections", "-fdata-sections"]
    if lto:
        f.append("-flto")
    return f


def compile_objects(target: Target, sources: list[Path], out_dir: Path, include_dirs=(),
                    cflags=(), strict: bool = True) -> list[Path]:
    """Compile C files to objects (one compiler call per file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    objs = []
    compiler = cc(target)
    for src in sources:
        obj = out_dir / (Path(src).stem + ".o")
        cmd = [compiler, *(STRICT if strict else ["-std=c99"]), *target.cflags, *cflags,
               *[f"-I{d}" for d in include_dirs], "-c", str(src), "-o", str(obj)]
        run(cmd, what=f"{Path(compiler).name} {Path(src).name}")
        objs.append(obj)
    return objs


def link(target: Target, objects: list[Path], out: Path, ldflags=(), libs=("-lm",),
         driver: str | None = None) -> Path:
    """Link with the target's C compiler (or ``driver``, e.g. its C++ compiler)."""
    cmd = [driver or cc(target), *target.cflags, *map(str, objects), *ldflags, *target.ldflags,
           *libs, "-o", str(out)]
    run(cmd, what=f"linking {out.name}")
    return out
