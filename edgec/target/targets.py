"""Target descriptions: ``targets/*.toml`` (or a user's own file).

A target names its C compiler and flags, its features (``dsp``, ``fpu``,
``mve``), a typical memory size used as the default budget, and where an
emulator exists, the QEMU machine with its memory map and UART.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..ir.errors import EdgecError
from ..ir.templating import TARGETS

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


# What a target file's strings may hold.  They are written into the bundle's Makefile,
# edgec.mk (included by the user's own Makefile, in contexts edgec cannot know),
# CMakeLists.txt and C comments, and passed on command lines: rather than quoting
# for each of those languages, a string may only hold the characters compiler flags,
# program names and paths are made of, so that no quoting is ever needed.
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")            # a name: cortex-m4, mps2-an385
PROGRAM = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_.+/-]*")     # a program or path: arm-none-eabi-gcc
FLAG = re.compile(r"[A-Za-z0-9_.+=,/:@-]+")                   # -mcpu=cortex-m4, -Wl,--gc-sections
PACKAGES = re.compile(r"([A-Za-z0-9][A-Za-z0-9.+-]*( [A-Za-z0-9][A-Za-z0-9.+-]*)*)?")  # or ""
UARTS = {"arm": ("cmsdk", "pl011", "none"), "riscv": ("ns16550", "none"), "host": ("none",)}
ADDRESS_LIMIT = 1 << 32   # every target is a 32-bit microcontroller (or the host, without QEMU)


def _show(v) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


class _Reader:
    """Typed access to one table of a target file; every problem is one EdgecError
    naming the file and the key."""

    def __init__(self, data, section: str, path: Path):
        self.section, self.path = section, path
        if not isinstance(data, dict):
            self.fail(f"{section or 'the file'} must be a table, not {_show(data)}")
        self.data = data

    def key(self, k: str) -> str:
        return f"{self.section}.{k}" if self.section else k

    def fail(self, msg: str):
        raise EdgecError(f"bad target file: {msg}", str(self.path))

    def get(self, k: str, default=None, required: bool = False):
        if k not in self.data:
            if required:
                raise EdgecError(f"target file lacks {self.key(k)!r}", str(self.path))
            return default
        return self.data[k]

    def string(self, k: str, pattern: re.Pattern | None, what: str, default=None,
               required: bool = False) -> str:
        v = self.get(k, default, required)
        if not isinstance(v, str):
            self.fail(f"{self.key(k)} must be a string, not {_show(v)}")
        if pattern is None:
            if any(ord(c) < 32 or ord(c) == 127 for c in v):
                self.fail(f"{self.key(k)} holds a control character: {_show(v)}")
        elif not pattern.fullmatch(v):
            self.fail(f"{self.key(k)} {_show(v)} is not {what}")
        return v

    def strings(self, k: str, pattern: re.Pattern, what: str) -> list[str]:
        v = self.get(k, [])
        if not isinstance(v, list):
            self.fail(f"{self.key(k)} must be a list of strings, not {_show(v)}")
        for item in v:
            if not isinstance(item, str):
                self.fail(f"{self.key(k)} must be a list of strings; it holds {_show(item)}")
            if not pattern.fullmatch(item):
                self.fail(f"{self.key(k)} item {_show(item)} is not {what}")
        return list(v)

    def integer(self, k: str, lo: int, hi: int, default=None, address: bool = True) -> int:
        v = self.get(k, default, default is None)
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(f"{self.key(k)} must be an integer, not {_show(v)}")
        if not lo <= v <= hi:
            f = "#x" if address else "d"
            self.fail(f"{self.key(k)} {v:{f}} is outside {lo:{f}}..{hi:{f}}")
        return v

    def size(self, k: str, default, what: str) -> int:
        v = self.get(k, default, default is None)
        if not isinstance(v, (int, str)):
            self.fail(f"{self.key(k)} must be a size such as 65536 or \"64K\", not {_show(v)}")
        try:
            n = parse_size(v, what)
        except EdgecError as e:
            self.fail(f"{self.key(k)}: {e}")
        if not 0 < n <= ADDRESS_LIMIT * 4:
            self.fail(f"{self.key(k)} {_show(v)} is not a size from 1 byte to 16G")
        return n


_FLAG_WHAT = ("a single compiler flag (letters, digits and _ . + = , / : @ -; no spaces, quotes, "
              "$, ;, # or other shell or make characters)")


def _load_file(path: Path) -> Target:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise EdgecError(f"cannot read target file: {e.strerror}", str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise EdgecError(f"bad target file: {str(e).splitlines()[0]}", str(path)) from None
    r = _Reader(data, "", path)
    name = r.string("name", WORD, "a name (letters, digits, '.', '_' and '-')", required=True)
    arch = r.string("arch", WORD, "an architecture", required=True)
    if arch not in ("host", "arm", "riscv"):
        raise EdgecError(f"unknown arch {arch!r} (host, arm or riscv)", str(path))
    cc = r.string("cc", PROGRAM, "a compiler name or path (no spaces or shell characters)",
                  required=True)
    qemu = None
    if r.get("qemu", {}) != {}:
        q = _Reader(r.get("qemu"), "qemu", path)
        binary = q.string("binary", PROGRAM, "a program name or path", required=True)
        flash_origin = q.integer("flash_origin", 0, ADDRESS_LIMIT - 1)
        ram_origin = q.integer("ram_origin", 0, ADDRESS_LIMIT - 1)
        flash_size = q.size("flash_size", None, "flash size")
        ram_size = q.size("ram_size", None, "RAM size")
        for what, origin, size in (("flash", flash_origin, flash_size), ("ram", ram_origin, ram_size)):
            if origin + size > ADDRESS_LIMIT:
                q.fail(f"qemu.{what}_origin + qemu.{what}_size ends past 4G")
        uart = q.string("uart", WORD, "a UART kind", required=True)
        if uart not in UARTS[arch]:
            q.fail(f"qemu.uart {uart!r} is not one of {', '.join(UARTS[arch])} (arch {arch})")
        qemu = Qemu(
            binary=binary,
            package=q.string("package", PACKAGES, "Debian package names separated by spaces",
                             default=binary),
            machine=q.string("machine", WORD, "a QEMU machine name (letters, digits, '.', '_' "
                             "and '-')", required=True),
            flash_origin=flash_origin, flash_size=flash_size,
            ram_origin=ram_origin, ram_size=ram_size, uart=uart,
            uart_base=q.integer("uart_base", 0, ADDRESS_LIMIT - 0x100),
            cpu_hz=q.integer("cpu_hz", 1, ADDRESS_LIMIT - 1, address=False),
            exit_base=q.integer("exit_base", 0, ADDRESS_LIMIT - 0x100, default=0))
    mem = _Reader(r.get("memory", {}), "memory", path)
    t = Target(
        name=name, description=r.string("description", None, "", default=""),
        arch=arch, cc=cc,
        package=r.string("package", PACKAGES, "Debian package names separated by spaces", default=""),
        cflags=r.strings("cflags", FLAG, _FLAG_WHAT),
        ldflags=r.strings("ldflags", FLAG, _FLAG_WHAT),
        features=r.strings("features", WORD, "a feature name (letters, digits, '.', '_' and '-')"),
        flash=mem.size("flash", "1M", "flash size"),
        ram=mem.size("ram", "256K", "RAM size"),
        qemu=qemu, path=path,
        extra={k: v for k, v in data.items() if k not in (
            "name", "description", "arch", "cc", "package", "cflags", "ldflags",
            "features", "memory", "qemu")})
    return t


def available() -> list[str]:
    return sorted(p.stem for p in TARGETS.glob("*.toml"))


def load(name_or_path: "str | Target | None") -> Target:
    if isinstance(name_or_path, Target):
        return name_or_path
    name = name_or_path or DEFAULT_TARGET
    if name.endswith(".toml") or "/" in name:
        p = Path(name)
        if "\0" in name or not p.exists():
            raise EdgecError("no such target file", name)
        return _load_file(p)
    p = TARGETS / f"{name}.toml"
    if not WORD.fullmatch(name) or not p.exists():
        raise EdgecError(f"unknown target {name!r} (known: {', '.join(available())}; "
                         "or give a path to a .toml file)")
    return _load_file(p)


def all_targets() -> list[Target]:
    return [load(n) for n in available()]
