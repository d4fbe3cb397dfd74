"""Target descriptions: ``targets/*.toml`` (or a user's own file).

A target names its C compiler and flags, its features (``dsp``, ``fpu``,
``mve``), a typical memory size used as the default budget, and where an
emulator exists, the QEMU machine with its memory map and UART.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EdgecError
from .templating import TARGETS

DEFAULT_TARGET = "cortex-m4"


def parse_size(v, what: str = "size") -> int:
    """'256K', '1M', '64KB', '1.5M', 4096 -> bytes."""
    if isinstance(v, bool):
        raise EdgecError(f"bad {what}: {v!r}")
    if isinstance(v, int):
        if v < 0:
            raise EdgecError(f"bad {what}: {v!r} (negative)")
        return v
    s = str(v).strip().upper().replace(" ", "")
    if s.endswith("IB"):
        s = s[:-2]
    elif s.endswith("B"):
        s = s[:-1]
    mult = 1
    if s and s[-1] in "KMG":
        mult = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}[s[-1]]
        s = s[:-1]
    try:
        val = float(s)
    except ValueError:
        raise EdgecError(f"bad {what}: {v!r} (expected bytes, e.g. 65536, 64K or 1M)") from None
    if val < 0 or val != val or val == float("inf"):
        raise EdgecError(f"bad {what}: {v!r}")
    n = val * mult
    if n != int(n):
        raise EdgecError(f"bad {what}: {v!r} is not a whole number of bytes")
    return int(n)


@dataclass
class Qemu:
    binary: str
    package: str
    machine: str
    flash_origin: int
    flash_size: int
    ram_origin: int
    ram_size: int
    uart: str
    uart_base: int
    cpu_hz: int
    exit_base: int = 0


@dataclass
class Target:
    name: str
    description: str
    arch: str
    cc: str
    package: str
    cflags: list[str]
    ldflags: list[str]
    features: list[str]
    flash: int
    ram: int
    qemu: Qemu | None = None
    path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def is_host(self) -> bool:
        return self.arch == "host"

    def has(self, feature: str) -> bool:
        return feature in self.features

    def with_memory(self, flash: int | None = None, ram: int | None = None) -> "Target":
        """The same core with the memory of a particular part (``--flash`` / ``--ram``):
        what the fit check and the firmware's linker script use."""
        import dataclasses
        return dataclasses.replace(self, flash=self.flash if flash is None else int(flash),
                                   ram=self.ram if ram is None else int(ram))

    def summary(self) -> dict:
        d = {
            "name": self.name, "description": self.description, "arch": self.arch,
            "cc": self.cc, "cflags": self.cflags, "features": self.features,
            "flash": self.flash, "ram": self.ram,
        }
        if self.qemu:
            d["qemu"] = {"machine": self.qemu.machine, "binary": self.qemu.binary}
        return d


def _load_file(path: Path) -> Target:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise EdgecError(f"cannot read target file: {e.strerror}", str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise EdgecError(f"bad target file: {e}", str(path)) from None
    try:
        q = data.get("qemu")
        qemu = None
        if q:
            qemu = Qemu(
                binary=str(q["binary"]), package=str(q.get("package", q["binary"])),
                machine=str(q["machine"]),
                flash_origin=int(q["flash_origin"]), flash_size=parse_size(q["flash_size"]),
                ram_origin=int(q["ram_origin"]), ram_size=parse_size(q["ram_size"]),
                uart=str(q["uart"]), uart_base=int(q["uart_base"]), cpu_hz=int(q["cpu_hz"]),
                exit_base=int(q.get("exit_base", 0)))
        mem = data.get("memory", {})
        t = Target(
            name=str(data["name"]), description=str(data.get("description", "")),
            arch=str(data["arch"]), cc=str(data["cc"]), package=str(data.get("package", "")),
            cflags=[str(f) for f in data.get("cflags", [])],
            ldflags=[str(f) for f in data.get("ldflags", [])],
            features=[str(f) for f in data.get("features", [])],
            flash=parse_size(mem.get("flash", "1M"), "flash size"),
            ram=parse_size(mem.get("ram", "256K"), "RAM size"),
            qemu=qemu, path=path,
            extra={k: v for k, v in data.items() if k not in (
                "name", "description", "arch", "cc", "package", "cflags", "ldflags",
                "features", "memory", "qemu")})
    except KeyError as e:
        raise EdgecError(f"target file lacks {e.args[0]!r}", str(path)) from None
    except (TypeError, ValueError) as e:
        raise EdgecError(f"bad target file: {e}", str(path)) from None
    if t.arch not in ("host", "arm", "riscv"):
        raise EdgecError(f"unknown arch {t.arch!r} (host, arm or riscv)", str(path))
    return t


def available() -> list[str]:
    return sorted(p.stem for p in TARGETS.glob("*.toml"))


def load(name_or_path: "str | Target | None") -> Target:
    if isinstance(name_or_path, Target):
        return name_or_path
    name = name_or_path or DEFAULT_TARGET
    if name.endswith(".toml") or "/" in name:
        p = Path(name)
        if not p.exists():
            raise EdgecError("no such target file", name)
        return _load_file(p)
    p = TARGETS / f"{name}.toml"
    if not p.exists():
        raise EdgecError(f"unknown target {name!r} (known: {', '.join(available())}; "
                         "or give a path to a .toml file)")
    return _load_file(p)


def all_targets() -> list[Target]:
    return [load(n) for n in available()]
