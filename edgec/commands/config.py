"""Project configuration: ``edgec.toml``, or ``[tool.edgec]`` in ``pyproject.toml``.

It names the model and how to build it, where the firmware ELF is, and the
size budgets, so that a Makefile or a CI job only runs ``edgec build`` and
``edgec check``::

    model = "model/kws_ref_model.tflite"   # paths are relative to this file
    target = "cortex-m4"
    name = "kws"
    output = "build/kws"                    # the bundle directory
    opt-level = "s"
    lto = false
    optimize = "speed"                      # or "size": one shared kernel per operator type
    firmware = true
    elf = "build/kws_app.elf"               # what `edgec check` measures (default: the bundle's)

    [budget]
    flash = "256K"
    ram = "64K"
    max-growth = "2%"
    baseline = "ci/size-baseline.json"

Options on the command line override the file.  A malformed file is bad input:
one line naming the file and the problem (exit status 2).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..ir.errors import EdgecError
from ..target.targets import parse_size

TOP_KEYS = ("model", "target", "name", "output", "backend", "opt-level", "lto", "optimize", "firmware",
            "input-shape", "test-samples", "elf", "budget")
BUDGET_KEYS = ("flash", "ram", "max-growth", "baseline")


@dataclass
class Config:
    path: Path
    model: Path | None = None
    target: str | None = None
    name: str | None = None
    output: Path | None = None
    backend: str | None = None
    opt_level: str | None = None
    lto: bool | None = None
    optimize: str | None = None
    firmware: bool | None = None
    input_shapes: list[str] = field(default_factory=list)
    test_samples: int | None = None
    elf: Path | None = None
    flash: int | None = None
    ram: int | None = None
    max_growth: str | None = None
    baseline: Path | None = None

    @property
    def label(self) -> str:
        return self.path.name if self.path.name == "edgec.toml" else f"{self.path.name} [tool.edgec]"


def find(explicit=None, cwd=None) -> Config | None:
    """``explicit`` (a path given with ``--config``), else ``edgec.toml`` in the
    working directory, else ``pyproject.toml`` there when it has ``[tool.edgec]``."""
    base = Path(cwd or ".")
    if explicit is not None:
        p = Path(explicit)
        if not p.is_file():
            raise EdgecError(f"no such config file: {p}")
        return load(p)
    p = base / "edgec.toml"
    if p.is_file():
        return load(p)
    p = base / "pyproject.toml"
    if p.is_file():
        data = _read(p)
        if isinstance(data.get("tool"), dict) and "edgec" in data["tool"]:
            return load(p, data)
    return None


def _read(p: Path) -> dict:
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise EdgecError(f"cannot read {p}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise EdgecError(f"{p}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise EdgecError(f"{p}: bad TOML: {str(e).splitlines()[0]}") from None


def load(p: Path, data: dict | None = None) -> Config:
    data = _read(p) if data is None else data
    where = str(p)
    if p.name == "pyproject.toml" or (set(data) == {"tool"} and isinstance(data["tool"], dict)
                                      and "edgec" in data["tool"]):
        sec = data.get("tool", {}).get("edgec")
        where = f"{p} [tool.edgec]"
        if not isinstance(sec, dict):
            raise EdgecError("missing or not a table", where)
        data = sec
    d = {k.replace("_", "-"): v for k, v in data.items()}
    unknown = sorted(set(d) - set(TOP_KEYS))
    if unknown:
        raise EdgecError(f"unknown key {unknown[0]!r} (known: {', '.join(TOP_KEYS)})", where)
    here = p.parent
    c = Config(path=p)

    def s(key):
        v = d.get(key)
        if v is None:
            return None
        if not isinstance(v, str) or not v.strip():
            raise EdgecError(f"{key!r} must be a non-empty string", where)
        return v

    def b(key):
        v = d.get(key)
        if v is not None and not isinstance(v, bool):
            raise EdgecError(f"{key!r} must be true or false", where)
        return v

    def path(v):
        return (here / v) if v is not None else None

    c.model = path(s("model"))
    c.target = s("target")
    c.name = s("name")
    c.output = path(s("output"))
    c.backend = s("backend")
    ol = d.get("opt-level")
    if ol is not None:
        if isinstance(ol, bool) or not isinstance(ol, (str, int)):
            raise EdgecError("'opt-level' must be one of 0, 1, 2, 3, s, z", where)
        c.opt_level = str(ol)
    c.lto = b("lto")
    c.optimize = s("optimize")
    if c.optimize is not None and c.optimize not in ("speed", "size"):
        raise EdgecError("'optimize' must be \"speed\" or \"size\"", where)
    c.firmware = b("firmware")
    shp = d.get("input-shape")
    if shp is not None:
        if isinstance(shp, str):
            shp = [shp]
        if not isinstance(shp, list) or not all(isinstance(x, str) for x in shp):
            raise EdgecError("'input-shape' must be a string or a list of strings", where)
        c.input_shapes = list(shp)
    ts = d.get("test-samples")
    if ts is not None:
        if isinstance(ts, bool) or not isinstance(ts, int) or not 1 <= ts <= 1000:
            raise EdgecError("'test-samples' must be a whole number from 1 to 1000", where)
        c.test_samples = ts
    c.elf = path(s("elf"))
    bud = d.get("budget", {})
    if not isinstance(bud, dict):
        raise EdgecError("'budget' must be a table ([budget])", where)
    bud = {k.replace("_", "-"): v for k, v in bud.items()}
    unknown = sorted(set(bud) - set(BUDGET_KEYS))
    if unknown:
        raise EdgecError(f"unknown key {unknown[0]!r} in [budget] (known: {', '.join(BUDGET_KEYS)})", where)
    for key in ("flash", "ram"):
        v = bud.get(key)
        if v is not None:
            if isinstance(v, float):
                raise EdgecError(f"bad {key} budget {v!r} (a whole number of bytes, or e.g. \"64K\")", where)
            try:
                setattr(c, key, parse_size(v, f"{key} budget"))
            except EdgecError as e:
                raise EdgecError(str(e), where) from None
    mg = bud.get("max-growth")
    if mg is not None:
        from ..report.size import parse_growth
        if isinstance(mg, bool) or not isinstance(mg, (str, int)):
            raise EdgecError("'max-growth' must be e.g. \"2%\" or \"1K\"", where)
        try:
            parse_growth(mg)
        except EdgecError as e:
            raise EdgecError(str(e).replace("--max-growth", "max-growth"), where) from None
        c.max_growth = str(mg)
    bl = bud.get("baseline")
    if bl is not None:
        if not isinstance(bl, str) or not bl.strip():
            raise EdgecError("'baseline' must be a path", where)
        c.baseline = here / bl
    return c
