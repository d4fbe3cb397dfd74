"""Size reports: flash and RAM of a linked firmware, from its ELF.

``edgec size`` and ``edgec check`` are built on this module.  Everything is read
from the ELF with pyelftools (:mod:`edgec.target.elfsize`); the bundle's report.json
only adds what the ELF cannot say (layer names and operators, the arena plan).

* :func:`size_report` -> a dict with the documented schema ``edgec-size/1``
  (docs/SIZE_REPORT.md): per section, per symbol, per model layer (kernel
  code, weights, its share of the arena at the arena's peak), and the rest of
  the image split into model runtime, application/harness, test data, C
  library and unattributed bytes (alignment, literals without symbols).  The
  parts of flash add up to the flash total exactly, likewise for RAM.
* :func:`compare` -> growth against a previous size report (per section,
  category and layer); :func:`check` -> budgets and allowed growth.
* :func:`locate` resolves ``ELF_OR_BUNDLE`` (an ELF, or a bundle directory
  with or without a linked ``firmware.elf``) to an ELF and its report.json.

Definitions (the same as ``arm-none-eabi-size``): flash is every allocated
section with contents (``.isr_vector``, ``.text``, ``.rodata``, ``.ARM.exidx``,
the initial values of ``.data``), RAM every writable allocated section
(``.data``, ``.bss``, and the stack / heap reservations when the linker script
makes them sections).  A stack or heap reserved only by a linker symbol
(``_Min_Stack_Size``, ``__HEAP_SIZE``...) with no section is added to RAM and
reported as such.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..target import elfsize
from ..ir.errors import EdgecError
from ..target.targets import parse_size

SCHEMA = "edgec-size/1"

# Category keys, in display order, with their labels.
FLASH_PARTS = {
    "weights": "weights (layer constants)",
    "kernel_code": "kernel code (layer functions)",
    "model_runtime": "model runtime (invoke, shared helpers)",
    "model_constants": "model constants (shared tables)",
    "app": "application / harness",
    "test_data": "test vectors",
    "libc": "C library and compiler runtime",
    "unattributed": "unattributed (alignment padding)",
}
RAM_PARTS = {
    "arena": "activation arena",
    "model_other": "other model state",
    "app": "application / harness data",
    "libc": "C library data",
    "stack": "stack (reserved)",
    "heap": "heap (reserved)",
    "unattributed": "unattributed (alignment)",
}

# Object files of the C library and the compiler runtime (newlib, newlib-nano,
# libm, libgcc, picolibc archives) as their STT_FILE symbols name them.
_LIBC_FILE = re.compile(
    r"^(lib[a-z0-9]*_a-|libgcc|_[a-z0-9_]+\.o$|lib1funcs|bpabi|ieee754|fp-bit|dp-bit|"
    r"crt[a-z0-9]*\.|unwind|pr-support|libunwind|linux-atomic|sysdep|picolibc)")
# C standard library / runtime names, for symbols no file can be found for.
_LIBC_NAMES = set("""
memcpy memmove memset memcmp memchr strlen strnlen strcmp strncmp strcpy strncpy strcat strchr strrchr
strstr strtol strtoul strtod strtof atoi abs labs div ldiv qsort bsearch rand srand malloc free calloc
realloc abort exit _exit atexit errno _impure_ptr _impure_data _global_impure_ptr printf sprintf snprintf
vsnprintf puts putchar fputs fwrite fputc _write _read _sbrk _close _lseek _fstat _isatty raise signal
expf exp logf log log10f log10 log2f log2 powf pow sqrtf sqrt tanhf tanh sinhf coshf sinf sin cosf cos
tanf tan atanf atan atan2f atan2 asinf acosf floorf floor ceilf ceil roundf round lroundf lround rintf
rint nearbyintf truncf trunc fmodf fmod fabsf fabs frexpf frexp ldexpf ldexp scalbnf scalbn erff erf
expm1f log1pf fmaxf fminf nanf copysignf isnanf finitef
""".split())
_RESERVATION_SYMBOLS = {
    "stack": ("__stack_size", "__STACK_SIZE", "_Min_Stack_Size", "__stack_size__", "_stack_size",
              "STACK_SIZE", "__StackSize", "_STACK_SIZE"),
    "heap": ("__heap_size", "__HEAP_SIZE", "_Min_Heap_Size", "__heap_size__", "_heap_size",
             "HEAP_SIZE", "__HeapSize", "_HEAP_SIZE"),
}
_HARNESS_NAMES = re.compile(r"^(fw_|Reset_Handler$|_start$|[A-Za-z]+_(Handler|IRQHandler)$|"
                            r"edgec_trace$|edgec_profile_)")
# a layer function's operator, after the prefix: l3_conv.constprop.0 -> conv
_FUNC_OP = re.compile(r"l\d+_([a-z0-9]+)")
# bundles of edgec before every symbol carried the bundle's name
_LEGACY = "edgec_"
_LEGACY_LAYER = elfsize.layer_symbol("edgec", legacy=False)
# TensorFlow Lite Micro bundles: TFLM's C++ (mangled tflite:: names, anonymous
# namespaces of its .cc files) and CMSIS-NN's C functions
_TFLM_SYMBOL = re.compile(r"^(_Z[A-Z]*N?K?6tflite|_Z[A-Z]*N12_GLOBAL__N_1|_ZZN6tflite|arm_|"
                          r"MicroPrintf|DebugLog|_Z\d+MicroPrintf)")
_TFLM_FILE = re.compile(r"\.(cc|cpp)$|^arm_")


@dataclass
class Located:
    """What ``edgec size`` reports on: the ELF, the bundle's report.json and where they came from."""
    elf: Path
    build_report: dict | None
    bundle_dir: Path | None
    note: str = ""
    tmp: object = None  # a TemporaryDirectory kept alive while the ELF is in use


# ---------------------------------------------------------------- locating inputs

def load_build_report(path) -> dict:
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgecError(f"no report.json at {p} (is it an edgec bundle?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EdgecError(f"cannot read {p}: {getattr(e, 'strerror', None) or e}") from None
    if not isinstance(d, dict) or not str(d.get("schema", "")).startswith("edgec-build/"):
        raise EdgecError(f"{p} is not an edgec build report (report.json of a bundle)")
    return d


def _is_elf(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def locate(elf_or_bundle, bundle=None, report=None, link: bool = True) -> Located:
    """Resolve the command line's ``ELF_OR_BUNDLE``.

    An ELF: its report.json is ``report``, else the one in ``bundle``, else one
    next to the ELF (a bundle's ``firmware.elf``), else none (sections and symbols
    are still reported; layers only from the ``edgec_l<N>_*`` symbol names).
    A bundle directory: its ``firmware.elf`` (``make firmware``) when present and
    newer than the model's C file, else (``link``) the bundle linked with edgec's
    firmware harness without test vectors, in a temporary directory."""
    p = Path(elf_or_bundle)
    if not p.exists():
        raise EdgecError(f"no such file or directory: {p}")
    if p.is_dir():
        if bundle is not None and Path(bundle).resolve() != p.resolve():
            raise EdgecError("give either a bundle directory or --bundle, not both")
        rep = load_build_report(report or p)
        elf = p / "firmware.elf"
        src = p / f"{rep.get('name', 'model')}.c"
        if elf.exists() and (not src.exists() or elf.stat().st_mtime >= src.stat().st_mtime):
            return Located(elf, rep, p)
        if not link:
            raise EdgecError(f"{p} has no linked firmware.elf (run `make -C {p} firmware`)")
        return _link_size_only(p, rep, stale=elf.exists())
    if not _is_elf(p):
        raise EdgecError(f"{p} is not an ELF file (give a linked firmware .elf or a bundle directory)")
    rep = None
    bdir = None
    if report is not None:
        rep = load_build_report(report)
        bdir = Path(report).parent if not Path(report).is_dir() else Path(report)
    elif bundle is not None:
        rep = load_build_report(bundle)
        bdir = Path(bundle)
    elif (p.parent / "report.json").exists():
        try:
            rep = load_build_report(p.parent)
            bdir = p.parent
        except EdgecError:
            rep = None
    return Located(p, rep, bdir)


def locate_models(elf, bundles=(), names=()) -> tuple[Located, list[tuple[str | None, dict | None]]]:
    """A firmware ELF that links several models: each ``--bundle`` (its report.json
    names the model and its layers) and each ``--name`` (a model without its bundle:
    symbols only); returns the ELF and the (name, report.json) of every model."""
    p = Path(elf)
    if not p.exists():
        raise EdgecError(f"no such file or directory: {p}")
    if p.is_dir() or not _is_elf(p):
        raise EdgecError(f"{p} is not an ELF file: with several --bundle / --name, give the firmware "
                         "ELF that links them")
    models: list[tuple[str | None, dict | None]] = []
    for b in bundles:
        rep = load_build_report(b)
        models.append((str(rep.get("name") or "model"), rep))
    models += [(str(n), None) for n in names]
    seen: dict[str, str] = {}
    for (n, rep), where in zip(models, [str(b) for b in bundles] + [f"--name {n}" for n in names]):
        if n in seen:
            raise EdgecError(f"two models named {n} ({seen[n]} and {where}): models linked into one "
                             "firmware need different names (edgec build --name)")
        seen[n] = where
    return Located(p, models[0][1] if len(models) == 1 else None,
                   Path(bundles[0]) if len(bundles) == 1 else None), models


def _link_size_only(bundle_dir: Path, rep: dict, stale: bool) -> Located:
    import tempfile

    from ..target import firmware, targets
    tgt = targets.load(rep.get("target"))
    if tgt.is_host:
        raise EdgecError(f"{bundle_dir} was built for the host: give the ELF of a firmware that "
                         "links it, or rebuild the bundle for a microcontroller target")
    tmp = tempfile.TemporaryDirectory(prefix="edgec-size-")
    opts = rep.get("options", {})
    # the harness's host-I/O variant: it calls the model (so nothing of it is
    # garbage-collected) without embedding test vectors
    fw = firmware.build(bundle_dir, rep, tgt, Path(tmp.name), hostio=True,
                        opt_level=str(opts.get("opt_level", "s")), lto=bool(opts.get("lto", False)))
    why = "its firmware.elf is older than its C code; " if stale else ""
    note = (f"{why}linked {bundle_dir.name} with edgec's firmware harness (host I/O, no test "
            f"vectors) for {tgt.name} to measure it")
    return Located(fw.elf, rep, bundle_dir, note, tmp)


# ---------------------------------------------------------------- accounting

def _prefix_of(img: elfsize.ElfImage, rep: dict | None, name: str | None) -> str:
    if name:
        return name
    if rep and rep.get("name"):
        return str(rep["name"])
    invokes = sorted(s.name[: -len("_invoke")] for s in img.symbols
                     if s.kind == "FUNC" and s.name.endswith("_invoke"))
    return invokes[0] if len(invokes) == 1 else "model"


@dataclass
class _Model:
    """One bundle linked into the ELF: its name (the prefix of all its symbols),
    its report.json (or None) and its source files."""
    name: str
    rep: dict | None
    index: int

    def __post_init__(self):
        self.layer = elfsize.layer_symbol(self.name, legacy=False)
        self.tflm = bool(self.rep) and self.rep.get("backend") == "tflm"
        self.files = {f"{self.name}.c", f"{self.name}.cc", f"{self.name}_model_data.c"}
        self.arena_symbols = {f"{self.name}_arena", f"{self.name}_arena_store"}


class _Owners:
    """Who owns a symbol or a file of the ELF, among several models."""

    def __init__(self, img: elfsize.ElfImage, models: list[_Model]):
        self.img = img
        self.models = models
        self.by_length = sorted(models, key=lambda m: (-len(m.name), m.index))
        self.by_file = {f: m for m in models for f in m.files}
        tflm = [m for m in models if m.tflm]
        self.tflm = bool(tflm)
        # TensorFlow Lite Micro's runtime: the TFLM model's, or shared when several are
        self.tflm_owner = tflm[0] if len(tflm) == 1 else None
        self.single = models[0] if len(models) == 1 else None

    def model_of_name(self, name: str) -> _Model | None:
        for m in self.by_length:
            if name.startswith(m.name + "_"):
                return m
        return None

    def classify(self, s: elfsize.Symbol) -> tuple[str, int | None, _Model | None]:
        """(owner, layer, model) of a symbol: owner is layer | model | test_data | app | libc;
        model is None for a runtime several models share (TFLM's, with two TFLM bundles).
        Names are looked at first (LTO partitions can lose their file symbols), the
        symbol's object file next."""
        m = self.model_of_name(s.name)
        if m is not None:
            lm = m.layer.match(s.name)
            if lm:
                return "layer", int(lm.group(1)), m
        f = self.img.file_of(s)
        if s.name.startswith(_LEGACY) and not s.name.startswith(elfsize.HOOKS):
            legacy = self.by_file.get(f) or self.single
            lm = _LEGACY_LAYER.match(s.name)
            if legacy is not None:
                return ("layer", int(lm.group(1)), legacy) if lm else ("model", None, legacy)
        if self.tflm and (_TFLM_SYMBOL.match(s.name) or (f and _TFLM_FILE.search(f))):
            return "model", None, self.by_file.get(f) or m or self.tflm_owner
        if s.name.startswith("fw_test_"):
            return "test_data", None, None
        if _HARNESS_NAMES.match(s.name):
            return "app", None, None
        m = m or self.by_file.get(f)
        if m is not None:
            return "model", None, m
        if f and _LIBC_FILE.match(f):
            return "libc", None, None
        base = s.name.split(".", 1)[0]
        if not f and (base in _LIBC_NAMES or base.startswith("__")):
            return "libc", None, None
        return "app", None, None

    def of_file(self, f: str) -> tuple[str, _Model | None]:
        """(owner, model) of the bytes an object file's mapping symbols mark."""
        m = self.by_file.get(f)
        if m is not None:
            return "model", m
        if self.tflm and _TFLM_FILE.search(f):
            return "model", self.tflm_owner
        if _LIBC_FILE.match(f):
            return "libc", None
        return "app", None


def _gaps(intervals: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """The parts of [lo, hi) no interval covers."""
    out = []
    pos = lo
    for a, b in sorted(intervals):
        if a > pos:
            out.append((pos, min(a, hi)))
        pos = max(pos, b)
    if pos < hi:
        out.append((pos, hi))
    return [(a, b) for a, b in out if b > a]


def _kind(sec: elfsize.Section, s: elfsize.Symbol | None = None) -> str:
    if s is not None and s.kind == "FUNC":
        return "code"
    if sec.flags & elfsize.SHF_EXECINSTR and s is None:
        return "code"
    if not sec.flags & elfsize.SHF_WRITE:
        return "const"
    return "bss" if sec.nobits else "data"


def _reservation(name: str) -> str | None:
    n = name.lower()
    if "stack" in n and "heap" in n:
        return "stack+heap"
    if "stack" in n:
        return "stack"
    if "heap" in n:
        return "heap"
    return None


MODEL_FLASH = ("weights", "kernel_code", "model_runtime", "model_constants")
MODEL_RAM = ("arena", "model_other")


def size_report(elf, build_report: dict | None = None, name: str | None = None,
                note: str = "", models: list[tuple[str | None, dict | None]] | None = None) -> dict:
    """The ``edgec-size/1`` report of a linked ELF (see docs/SIZE_REPORT.md).

    One model: ``build_report`` (its report.json) and / or ``name`` (its symbol prefix;
    guessed from ``<name>_invoke`` without either).  Several models linked into one
    firmware: ``models``, a list of (name, report.json) with one of them given each;
    every model's code, weights and arena are then attributed separately (``models``
    in the report)."""
    img = elfsize.read(elf)
    if not img.sections:
        raise EdgecError(f"{elf} has no allocated sections (an object file, not a linked firmware?)")
    mods = _models(img, build_report, name, models)
    owners = _Owners(img, mods)
    sections = sorted((s for s in img.sections if s.size > 0), key=lambda s: (s.addr, s.name))
    by_name = {s.name: s for s in sections}
    tally = _Tally(mods)
    kept = _sized_symbols(img, by_name)
    symbols_out, layers = _attribute_symbols(kept, by_name, img, owners, mods, tally)
    _attribute_literals(img, kept, by_name, owners, tally)
    reservations, unbacked = _reservations(img, sections, tally)
    sec_out = _sections(sections, tally)
    tally.check(img.flash_bytes, img.ram_bytes + unbacked)
    layer_rows, model_out = _per_model(mods, layers, img, tally)
    symbols_out.sort(key=lambda d: (-d["bytes"], d["name"], d["addr"]))
    out = _totals(elf, img, mods, model_out, sections, tally, unbacked, note)
    out.update({
        "reservations": reservations,
        "model_totals": {
            "flash": sum(tally.flash[k] for k in MODEL_FLASH),
            "ram": sum(tally.ram[k] for k in MODEL_RAM),
        },
        "models": model_out,
        "models_shared": {"flash": sum(tally.mflash[None].values()), "ram": sum(tally.mram[None].values())},
        "sections": sec_out,
        "layers": layer_rows,
        "arena": model_out[0]["arena"] if len(mods) == 1 else _arena_total(model_out),
        "symbols": symbols_out,
    })
    if len(mods) == 1 and mods[0].rep and "estimate" in mods[0].rep:
        out["build_estimate"] = {k: v for k, v in mods[0].rep["estimate"].items() if k != "note"}
    if not img.has_symtab:
        out["note"] = (note + "; " if note else "") + \
            "the ELF has no symbol table (stripped): only sections are reported"
    return out


def _models(img: elfsize.ElfImage, build_report: dict | None, name: str | None,
            models: list[tuple[str | None, dict | None]] | None) -> list[_Model]:
    """The models linked into the ELF: the ones given (each named), else the one of
    ``build_report`` / ``name`` / the ELF's ``<name>_invoke``."""
    if models:
        specs = [(str(n or (r or {}).get("name") or ""), r) for n, r in models]
        if any(not n for n, _ in specs):
            raise EdgecError("a model without a name (give its bundle or --name)")
        seen: set[str] = set()
        for n, _ in specs:
            if n in seen:
                raise EdgecError(f"two models named {n}: each bundle linked into one firmware needs "
                                 "its own --name")
            seen.add(n)
    else:
        specs = [(_prefix_of(img, build_report, name), build_report)]
    return [_Model(n, r, i) for i, (n, r) in enumerate(specs)]


class _Tally:
    """Bytes per part of flash and RAM, each model's share of the model parts (key
    None: a runtime several models share) and the bytes attributed in each section."""

    def __init__(self, mods: list[_Model]):
        self.flash = {k: 0 for k in FLASH_PARTS}
        self.ram = {k: 0 for k in RAM_PARTS}
        self.mflash = {m.index: {k: 0 for k in MODEL_FLASH} for m in mods}
        self.mram = {m.index: {k: 0 for k in MODEL_RAM} for m in mods}
        self.mflash[None] = {k: 0 for k in MODEL_FLASH}
        self.mram[None] = {k: 0 for k in MODEL_RAM}
        self.attributed: dict[str, int] = {}
        self.arena_symbol_bytes = {m.index: 0 for m in mods}

    def section(self, sec: elfsize.Section, n: int) -> None:
        self.attributed[sec.name] = self.attributed.get(sec.name, 0) + n

    def flash_part(self, owner: str, kind: str, m: _Model | None, n: int, weights: bool = False) -> None:
        if owner in ("layer", "model"):
            part = "weights" if weights else (
                ("kernel_code" if kind == "code" else "weights") if owner == "layer"
                else ("model_runtime" if kind == "code" else "model_constants"))
            self.flash[part] += n
            self.mflash[m.index if m else None][part] += n
        else:
            self.flash[owner] += n

    def ram_part(self, owner: str, m: _Model | None, n: int, arena: bool = False) -> None:
        if arena or owner in ("layer", "model"):
            part = "arena" if arena else "model_other"
            self.ram[part] += n
            self.mram[m.index if m else None][part] += n
        else:
            self.ram["app" if owner == "test_data" else owner] += n

    def check(self, flash_total: int, ram_total: int) -> None:
        """The parts add up to the totals, and the models' shares to the model parts."""
        assert sum(self.flash.values()) == flash_total, (self.flash, flash_total)
        assert sum(self.ram.values()) == ram_total, (self.ram, ram_total)
        for k in MODEL_FLASH:
            assert sum(v[k] for v in self.mflash.values()) == self.flash[k], k
        for k in MODEL_RAM:
            assert sum(v[k] for v in self.mram.values()) == self.ram[k], k


def _sized_symbols(img: elfsize.ElfImage,
                   by_name: dict[str, elfsize.Section]) -> list[tuple[elfsize.Symbol, int]]:
    """Sized symbols inside sections that count, each with the bytes attributed to it:
    each byte once (overlaps clipped), none in a stack / heap reservation."""
    syms = [s for s in img.symbols if s.section in by_name and s.section]
    syms.sort(key=lambda s: (s.section, s.addr, -s.size, s.name))
    kept: list[tuple[elfsize.Symbol, int]] = []  # symbol, bytes attributed (overlaps clipped)
    end_of: dict[str, int] = {}
    for s in syms:
        sec = by_name[s.section]
        if _reservation(sec.name) is not None:
            continue
        start = max(s.addr, end_of.get(s.section, sec.addr))
        stop = min(s.addr + s.size, sec.addr + sec.size)
        n = max(stop - start, 0)
        if n > 0:
            end_of[s.section] = stop
        kept.append((s, n))
    return kept


def _attribute_symbols(kept, by_name, img: elfsize.ElfImage, owners: _Owners, mods: list[_Model],
                       tally: _Tally) -> tuple[list[dict], dict[tuple[int, int], dict]]:
    """Each symbol's owner (a layer, a model, the harness, the C library...): the
    report's symbol rows, and what each (model, layer) holds."""
    layers: dict[tuple[int, int], dict] = {}
    symbols_out = []
    for s, n in kept:
        sec = by_name[s.section]
        owner, layer, m = owners.classify(s)
        kind = _kind(sec, s)
        tally.section(sec, n)
        arena_of = next((a for a in mods if s.name in a.arena_symbols), None)
        if arena_of is not None:
            m = arena_of
        symbols_out.append({
            "name": s.name, "addr": s.addr, "size": s.size, "bytes": n, "section": s.section,
            "kind": kind, "owner": "arena" if arena_of else owner, "layer": layer,
            "model": m.name if m is not None and (arena_of or owner in ("layer", "model")) else None,
            "file": img.file_of(s),
        })
        if n == 0:
            continue
        if sec.flash:
            # the TFLite flatbuffer TFLM runs is its weights
            tally.flash_part(owner, kind, m, n, weights=owner == "model" and m is not None and m.tflm
                             and s.name == f"{m.name}_model_data")
        if sec.ram:
            tally.ram_part(owner, m, n, arena=arena_of is not None)
            if arena_of is not None:
                tally.arena_symbol_bytes[arena_of.index] += n
        if owner == "layer":
            L = layers.setdefault((m.index, layer), {"code_bytes": 0, "weights_bytes": 0, "symbols": [],
                                                     "functions": []})
            L["code_bytes" if kind == "code" else "weights_bytes"] += n
            L["symbols"].append(s.name)
            if kind == "code":
                L["functions"].append(s.name)
    return symbols_out, layers


def _attribute_literals(img: elfsize.ElfImage, kept, by_name, owners: _Owners, tally: _Tally) -> None:
    """Bytes no sized symbol covers but an object file's mapping / local symbol
    marks (string literals, jump tables, literal pools): owned by that file."""
    covered: dict[str, list[tuple[int, int]]] = {}
    for s, n in kept:
        if n:
            covered.setdefault(s.section, []).append((s.addr + s.size - n, s.addr + s.size))
    anchors: dict[str, list[tuple[int, str]]] = {}
    for sec_name, addr, f in sorted(set(img.anchors)):
        if sec_name in by_name and _reservation(sec_name) is None:
            anchors.setdefault(sec_name, []).append((addr, f))
    literals = []
    for sec_name, marks in anchors.items():
        sec = by_name[sec_name]
        for lo, hi in _gaps(covered.get(sec_name, []), sec.addr, sec.addr + sec.size):
            inside = [(a, f) for a, f in marks if lo <= a < hi]
            for k, (a, f) in enumerate(inside):
                nxt = inside[k + 1][0] if k + 1 < len(inside) else hi
                if nxt > a:
                    literals.append((sec, f, nxt - a))
    for sec, f, n in literals:
        owner, m = owners.of_file(f)
        kind = _kind(sec)
        tally.section(sec, n)
        if sec.flash:
            tally.flash_part(owner, kind, m, n)
        if sec.ram:
            tally.ram_part(owner, m, n)


def _reservations(img: elfsize.ElfImage, sections, tally: _Tally) -> tuple[dict, int]:
    """Stack and heap: sections named for them, else linker symbols (bytes then
    added to RAM that no section holds: the second value)."""
    reservations = {}
    for sec in sections:
        r = _reservation(sec.name)
        if r is None or not sec.ram:
            continue
        if r == "stack+heap":
            heap = _abs_symbol(img, "heap")
            heap_b = min(heap[1], sec.size) if heap else 0
            parts = {"heap": heap_b, "stack": sec.size - heap_b}
        else:
            parts = {r: sec.size}
        for k, v in parts.items():
            tally.ram[k] += v
            sym = _abs_symbol(img, k)
            reservations[k] = {"bytes": reservations.get(k, {}).get("bytes", 0) + v,
                               "section": sec.name, "symbol": sym[0] if sym else None}
        tally.attributed[sec.name] = sec.size
    unbacked = 0
    for k in ("stack", "heap"):
        if k in reservations:
            continue
        sym = _abs_symbol(img, k)
        if sym and sym[1] > 0:
            reservations[k] = {"bytes": sym[1], "section": None, "symbol": sym[0]}
            tally.ram[k] += sym[1]
            unbacked += sym[1]
    return reservations, unbacked


def _sections(sections, tally: _Tally) -> list[dict]:
    """The report's section rows; what no symbol, file or reservation took is unattributed."""
    sec_out = []
    for sec in sections:
        un = sec.size - tally.attributed.get(sec.name, 0)
        if sec.flash:
            tally.flash["unattributed"] += un
        if sec.ram:
            tally.ram["unattributed"] += un
        sec_out.append({
            "name": sec.name, "addr": sec.addr, "size": sec.size,
            "kind": _reservation(sec.name) and "reserve" or _kind(sec),
            "flash": sec.size if sec.flash else 0, "ram": sec.size if sec.ram else 0,
            "unattributed": un,
        })
    return sec_out


def _per_model(mods: list[_Model], layers: dict[tuple[int, int], dict], img: elfsize.ElfImage,
               tally: _Tally) -> tuple[list[dict], list[dict]]:
    """Every model's layer rows (the ELF's bytes with report.json's plan) and its totals."""
    layer_rows, model_out = [], []
    for m in mods:
        found = {i: L for (mi, i), L in layers.items() if mi == m.index}
        rows = _layers(found, m.rep, img, m.name)
        arena = _arena(m.rep, tally.arena_symbol_bytes[m.index], rows)
        layer_rows += rows
        model_out.append({
            "name": m.name,
            "target": m.rep.get("target") if m.rep else None,
            "backend": m.rep.get("backend", "native") if m.rep else None,
            "model": m.rep.get("model", {}).get("source") if m.rep else None,
            "flash": {"total": sum(tally.mflash[m.index].values()), **tally.mflash[m.index]},
            "ram": {"total": sum(tally.mram[m.index].values()), **tally.mram[m.index]},
            "arena": arena,
            "layers": len(rows),
        })
    return layer_rows, model_out


def _totals(elf, img: elfsize.ElfImage, mods: list[_Model], model_out: list[dict], sections,
            tally: _Tally, unbacked: int, note: str) -> dict:
    """The head of the report: what was measured, and flash and RAM in total, per
    section, per part and as ``size`` (Berkeley) counts them."""
    first = mods[0].rep or {}
    reps = [m.rep for m in mods]

    def common(get):
        vals = [get(r) if r else None for r in reps]
        return vals[0] if all(v == vals[0] for v in vals) else None
    return {
        "schema": SCHEMA,
        "edgec_version": __version__,
        "elf": Path(elf).name,
        "machine": img.machine,
        "name": "+".join(m.name for m in mods),
        "target": common(lambda r: r.get("target")),
        "model": (" + ".join(str(m["model"]) for m in model_out) if len(mods) > 1
                  else (first.get("model", {}).get("source") if mods[0].rep else None)),
        "options": dict(common(lambda r: r.get("options", {})) or {}),
        "note": note,
        "flash": {"total": img.flash_bytes,
                  "sections": {s.name: s.size for s in sections if s.flash},
                  "parts": tally.flash},
        "ram": {"total": img.ram_bytes + unbacked,
                "sections": {s.name: s.size for s in sections if s.ram},
                "parts": tally.ram,
                "unbacked_reservations": unbacked},
        "berkeley": {"text": sum(s.size for s in sections if s.flash and not s.ram),
                     "data": sum(s.size for s in sections if s.flash and s.ram),
                     "bss": sum(s.size for s in sections if s.ram and s.nobits)},
    }


def _arena_total(models: list[dict]) -> dict:
    """The ``arena`` of a report on several models: their arenas' bytes added up
    (each model's own is in ``models[].arena``)."""
    def total(key):
        vals = [m["arena"][key] for m in models]
        return None if any(v is None for v in vals) else sum(vals)
    return {"bytes": total("bytes"), "planned_bytes": total("planned_bytes"),
            "lower_bound": total("lower_bound"), "peak_layer": None, "peak_live_bytes": None}


def _abs_symbol(img: elfsize.ElfImage, what: str) -> tuple[str, int] | None:
    for n in _RESERVATION_SYMBOLS[what]:
        if n in img.absolute:
            return n, int(img.absolute[n])
    return None


def _layers(found: dict[int, dict], rep: dict | None, img, model: str) -> list[dict]:
    planned = {L["index"]: L for L in (rep or {}).get("layers", [])}
    rows = []
    for i in sorted(set(found) | set(planned)):
        f = found.get(i, {"code_bytes": 0, "weights_bytes": 0, "symbols": [], "functions": []})
        p = planned.get(i)
        op = p["op"] if p else _op_from_functions(f["functions"], model)
        arena_out = sum(a["bytes"] for a in p.get("arena", []) if not a.get("scratch")) if p else None
        rows.append({
            "index": i,
            "model": model,
            "op": op,
            "name": p.get("name", "") if p else "",
            "code_bytes": f["code_bytes"],
            "weights_bytes": f["weights_bytes"],
            "flash_bytes": f["code_bytes"] + f["weights_bytes"],
            "weights_bytes_planned": p.get("weights_bytes") if p else None,
            "macs": p.get("macs") if p else None,
            "arena_output_bytes": arena_out,
            "arena_live_bytes": p.get("arena_live_bytes") if p else None,
            "arena_peak_share": None,
            "symbols": sorted(f["symbols"]),
        })
    return rows


def _op_from_functions(names: list[str], model: str) -> str:
    """``kws_l3_conv.constprop.0`` -> ``conv`` (without report.json, the function
    name is all there is to say what a layer does)."""
    for n in sorted(names):
        for p in (model + "_", _LEGACY):
            if n.startswith(p):
                n = n[len(p):]
                break
        m = _FUNC_OP.match(n)
        if m:
            return m.group(1)
    return "?"


def _arena(rep: dict | None, symbol_bytes: int, rows: list[dict]) -> dict:
    """The arena: its size in the ELF and in the plan, the layer at which the
    most of it is live, and each layer's share of it at that moment (the bytes
    of its outputs still live then, and its scratch; the shares add up to the peak)."""
    if not rep:
        return {"bytes": symbol_bytes, "planned_bytes": None, "lower_bound": None,
                "peak_layer": None, "peak_live_bytes": None}
    planned = {L["index"]: L for L in rep.get("layers", [])}
    live = {i: L.get("arena_live_bytes") for i, L in planned.items()}
    peak_layer = None
    if live and all(v is not None for v in live.values()):
        peak_layer = max(sorted(live), key=lambda i: live[i])
    if peak_layer is not None:
        have_lifetimes = all("last_layer" in a for L in planned.values() for a in L.get("arena", []))
        for r in rows:
            p = planned.get(r["index"])
            if p is None:
                continue
            if have_lifetimes:
                r["arena_peak_share"] = sum(a["bytes"] for a in p.get("arena", [])
                                            if r["index"] <= peak_layer <= a["last_layer"])
    return {
        "bytes": symbol_bytes,
        "planned_bytes": rep.get("arena_bytes"),
        "lower_bound": rep.get("arena_lower_bound"),
        "peak_layer": peak_layer,
        "peak_live_bytes": live.get(peak_layer) if peak_layer is not None else None,
    }


# ---------------------------------------------------------------- baseline and budgets

def load_size_report(path) -> dict:
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgecError(f"no such baseline file: {p}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EdgecError(f"cannot read baseline {p}: {getattr(e, 'strerror', None) or e}") from None
    schema = str(d.get("schema", "")) if isinstance(d, dict) else ""
    if schema.startswith("edgec-build/"):
        raise EdgecError(f"{p} is a bundle's build report; the baseline is a size report "
                         "(`edgec size --json` or `-o size.json`)")
    if schema != SCHEMA:
        raise EdgecError(f"{p} is not an edgec size report (schema {SCHEMA})")
    return d


def _delta(new: int, old: int) -> dict:
    return {"old": old, "new": new, "growth": new - old,
            "percent": round(100.0 * (new - old) / old, 3) if old else None}


def compare(new: dict, old: dict) -> dict:
    """Growth from ``old`` to ``new`` (both size reports): totals, sections, parts, layers."""
    def table(a: dict, b: dict) -> dict:
        return {k: _delta(a.get(k, 0), b.get(k, 0)) for k in list(b) + [k for k in a if k not in b]}
    out = {
        "baseline": {"elf": old.get("elf"), "options": old.get("options", {})},
        "flash": _delta(new["flash"]["total"], old["flash"]["total"]),
        "ram": _delta(new["ram"]["total"], old["ram"]["total"]),
        "sections": table({s["name"]: s["size"] for s in new["sections"]},
                          {s["name"]: s["size"] for s in old["sections"]}),
        "flash_parts": table(new["flash"]["parts"], old["flash"]["parts"]),
        "ram_parts": table(new["ram"]["parts"], old["ram"]["parts"]),
        "layers": [],
    }
    # layers by model and index (a baseline older than per-model reports: its one model)
    def keyed(rep):
        return {(L.get("model", rep.get("name")), L["index"]): L for L in rep.get("layers", [])}
    olds, news = keyed(old), keyed(new)
    order = {m["name"]: k for k, m in enumerate(new.get("models", []))}
    keys = sorted(set(olds) | set(news), key=lambda k: (order.get(k[0], len(order)), str(k[0]), k[1]))
    for mi, i in keys:
        a, b = news.get((mi, i)), olds.get((mi, i))
        row = {"index": i, "model": mi, "op": (a or b)["op"]}
        for k in ("code_bytes", "weights_bytes", "flash_bytes"):
            row[k] = _delta((a or {}).get(k, 0), (b or {}).get(k, 0))
        if a and b and a["op"] != b["op"]:
            row["op"] = f"{b['op']} -> {a['op']}"
        rows_changed = any(row[k]["growth"] for k in ("code_bytes", "weights_bytes"))
        row["changed"] = rows_changed or a is None or b is None
        out["layers"].append(row)
    # per model (several models in one firmware)
    def per_model(rep):
        return {m["name"]: m for m in rep.get("models", [])}
    om, nm = per_model(old), per_model(new)
    out["models"] = {k: {w: _delta(nm.get(k, {}).get(w, {}).get("total", 0),
                                   om.get(k, {}).get(w, {}).get("total", 0)) for w in ("flash", "ram")}
                     for k in list(nm) + [k for k in om if k not in nm]}
    return out


def parse_growth(v) -> tuple[str, float]:
    """'2%' -> ("percent", 2.0); '1K' / 512 -> ("bytes", 1024)."""
    s = str(v).strip()
    if s.endswith("%"):
        try:
            x = float(s[:-1])
        except ValueError:
            raise EdgecError(f"bad --max-growth {v!r} (e.g. 2% or 1K)") from None
        if not x >= 0 or x == float("inf"):
            raise EdgecError(f"bad --max-growth {v!r} (e.g. 2% or 1K)")
        return "percent", x
    try:
        return "bytes", float(parse_size(s, "--max-growth"))
    except EdgecError:
        raise EdgecError(f"bad --max-growth {v!r} (e.g. 2% or 1K)") from None


@dataclass
class Budgets:
    flash: int | None = None
    ram: int | None = None
    source: str = ""                   # where they came from (command line, edgec.toml, target)
    max_growth: tuple[str, float] | None = None
    max_growth_text: str = ""


@dataclass
class CheckResult:
    ok: bool
    rows: list[dict] = field(default_factory=list)       # budget rows
    growth: dict | None = None                           # compare() result
    growth_rows: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    source: str = ""

    def to_json(self) -> dict:
        return {"ok": self.ok, "budgets": self.rows, "budget_source": self.source,
                "growth_limits": self.growth_rows, "failures": self.failures}


def check(size: dict, budgets: Budgets, baseline: dict | None = None) -> CheckResult:
    """Compare a size report with budgets (and, with a baseline, its growth)."""
    res = CheckResult(ok=True, source=budgets.source)
    for what, label, limit in (("flash", "flash", budgets.flash), ("ram", "RAM", budgets.ram)):
        if limit is None:
            continue
        used = size[what]["total"]
        over = used - limit
        row = {"budget": what, "used": used, "limit": limit, "headroom": limit - used,
               "percent_used": round(100.0 * used / limit, 2) if limit else None,
               "ok": over <= 0}
        res.rows.append(row)
        if over > 0:
            res.ok = False
            res.failures.append(f"{label} {used:,} B exceeds its budget of {limit:,} B by {over:,} B")
    if baseline is not None:
        res.growth = compare(size, baseline)
        if budgets.max_growth is not None:
            mode, lim = budgets.max_growth
            for what, label in (("flash", "flash"), ("ram", "RAM")):
                d = res.growth[what]
                g = d["growth"]
                if mode == "percent":
                    pct = (100.0 * g / d["old"]) if d["old"] else (0.0 if g <= 0 else float("inf"))
                    bad = pct > lim
                    allowed = f"{lim:g}%"
                else:
                    bad = g > lim
                    allowed = f"{int(lim):,} B"
                res.growth_rows.append({"budget": what, "growth": g, "percent": d["percent"],
                                        "limit": budgets.max_growth_text or allowed, "ok": not bad})
                if bad:
                    res.ok = False
                    pct_s = f" ({d['percent']:+.2f}%)" if d["percent"] is not None else ""
                    res.failures.append(f"{label} grew by {g:,} B{pct_s} since the baseline, "
                                        f"more than the allowed {allowed}")
    return res


def budgets_from_target(target_name: str | None) -> Budgets | None:
    if not target_name:
        return None
    from ..target import targets
    t = targets.load(target_name)
    if t.is_host:
        return None
    return Budgets(t.flash, t.ram, source=f"typical memory of {t.name} (targets/{t.name}.toml)")

