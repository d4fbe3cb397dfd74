"""Flash and RAM of a linked firmware ELF, read with pyelftools.

Small and reusable (the size report builds on it):

* :func:`read` -> :class:`ElfImage`: allocated sections and sized symbols;
* ``ElfImage.flash_bytes`` / ``ram_bytes``: flash is the load image (every
  allocated section with contents: vectors, code, constants and the initial
  values of ``.data``), RAM every writable allocated section (``.data``,
  ``.bss``, the stack reservation);
* :func:`breakdown` splits them the way ``edgec bench`` reports them: the
  model's code and weights (``<prefix>_l<N>_*`` and the rest of ``<prefix>.c``),
  the arena, the harness's test vectors, the stack, everything else;
* ``ElfImage.absolute`` (linker-script symbols such as ``__stack_size``) and
  ``ElfImage.file_of(sym)``: the source file of a global symbol, found from the
  local symbols (Arm mapping symbols ``$t``/``$d`` included) its object file
  put at the same address.  :mod:`edgec.report.size` (``edgec size``) builds its
  per-layer / runtime / harness / C-library accounting on these.

``python -m edgec.target.elfsize firmware.elf [--prefix NAME] [--json]`` prints it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..ir.errors import EdgecError

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4


@dataclass
class Section:
    name: str
    addr: int
    size: int
    flags: int
    nobits: bool

    @property
    def flash(self) -> bool:
        """Occupies flash: allocated with contents (code, constants, .data's initial values)."""
        return bool(self.flags & SHF_ALLOC) and not self.nobits and self.size > 0

    @property
    def ram(self) -> bool:
        return bool(self.flags & SHF_ALLOC) and bool(self.flags & SHF_WRITE) and self.size > 0


@dataclass
class Symbol:
    name: str
    addr: int
    size: int
    kind: str      # "FUNC" | "OBJECT" | other st_type without the STT_ prefix
    bind: str      # "GLOBAL" | "LOCAL" | "WEAK"
    section: str   # name of the section it is in
    file: str      # source file of a local symbol (STT_FILE before it), "" for globals


@dataclass
class ElfImage:
    path: str
    machine: str
    sections: list[Section] = field(default_factory=list)
    symbols: list[Symbol] = field(default_factory=list)
    # absolute symbols (linker-script constants: __stack_size, _Min_Heap_Size, ...)
    absolute: dict[str, int] = field(default_factory=dict)
    # (section, address, file) of every local symbol, zero-sized ones included
    anchors: list[tuple[str, int, str]] = field(default_factory=list)
    has_symtab: bool = False

    @property
    def flash_bytes(self) -> int:
        return sum(s.size for s in self.sections if s.flash)

    @property
    def ram_bytes(self) -> int:
        return sum(s.size for s in self.sections if s.ram)

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def section_sizes(self) -> dict[str, int]:
        return {s.name: s.size for s in self.sections if s.size > 0}

    def symbol_bytes(self, pred) -> int:
        return sum(s.size for s in self.symbols if pred(s))

    def file_of(self, sym: Symbol) -> str:
        """Source file of ``sym``: its own for a local symbol; for a global one,
        the file of a local symbol at the same address in the same section (the
        mapping symbol every Arm object puts at the start of each of its input
        sections), or "" when there is none."""
        if sym.file:
            return sym.file
        if not hasattr(self, "_anchor_index"):
            idx: dict[tuple[str, int], str] = {}
            for sec, addr, f in self.anchors:
                idx.setdefault((sec, addr), f)
            self._anchor_index = idx
        return self._anchor_index.get((sym.section, sym.addr), "")


def read(path) -> ElfImage:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection
    p = Path(path)
    try:
        with open(p, "rb") as f:
            elf = ELFFile(f)
            img = ElfImage(str(p), elf["e_machine"])
            names = {}
            for i, sec in enumerate(elf.iter_sections()):
                names[i] = sec.name
                if sec["sh_flags"] & SHF_ALLOC:
                    img.sections.append(Section(sec.name, sec["sh_addr"], sec["sh_size"],
                                                sec["sh_flags"], sec["sh_type"] == "SHT_NOBITS"))
            symtab = elf.get_section_by_name(".symtab")
            if isinstance(symtab, SymbolTableSection):
                img.has_symtab = True
                current_file = ""
                for sym in symtab.iter_symbols():
                    kind = sym["st_info"]["type"]
                    bind = sym["st_info"]["bind"]
                    if kind == "STT_FILE":
                        current_file = sym.name
                        continue
                    shndx = sym["st_shndx"]
                    if shndx == "SHN_ABS" and sym.name and kind in ("STT_NOTYPE", "STT_OBJECT"):
                        img.absolute.setdefault(sym.name, sym["st_value"])
                        continue
                    if bind == "STB_LOCAL" and current_file and isinstance(shndx, int) \
                            and shndx in names and kind in ("STT_NOTYPE", "STT_FUNC", "STT_OBJECT"):
                        a = sym["st_value"]
                        if kind == "STT_FUNC" and img.machine == "EM_ARM":
                            a &= ~1
                        img.anchors.append((names[shndx], a, current_file))
                    if not sym.name or sym["st_size"] == 0 or not isinstance(shndx, int):
                        continue
                    addr = sym["st_value"]
                    if kind == "STT_FUNC" and img.machine == "EM_ARM":
                        addr &= ~1  # Thumb bit
                    img.symbols.append(Symbol(sym.name, addr, sym["st_size"], kind[4:],
                                              bind[4:], names.get(shndx, ""),
                                              current_file if bind == "STB_LOCAL" else ""))
    except OSError as e:
        raise EdgecError(f"cannot read {p}: {e.strerror}") from None
    except ELFError as e:
        raise EdgecError(f"{p} is not an ELF file ({e})") from None
    return img


def layer_symbol(prefix: str, legacy: bool = True) -> re.Pattern:
    """``<prefix>_l<N>_*``: layer N's kernel functions and constant arrays (every
    symbol of a bundle carries its name); ``legacy``: also ``edgec_l<N>_*``, the
    names of bundles written before edgec prefixed them."""
    alt = f"{re.escape(prefix)}|edgec" if legacy and prefix != "edgec" else re.escape(prefix)
    return re.compile(rf"(?:{alt})_l(\d+)_")


HOOKS = ("edgec_trace", "edgec_profile")  # provided by the firmware, not the model


def _in_flash(img: ElfImage, s: Symbol) -> bool:
    sec = img.section(s.section)
    return sec is not None and sec.flash and not sec.ram


def breakdown(img: ElfImage, prefix: str = "model") -> dict:
    """Flash and RAM split into the parts ``edgec bench`` reports.

    flash: ``weights`` (the model's constant arrays: its objects in flash but the
    TVM driver's tensor descriptors), ``model_code`` (the model's functions:
    ``<prefix>_*``, plus anything else local to ``<prefix>.c``), ``test_data`` (the
    harness's embedded test vectors, ``fw_test_*``), and ``code``: all the rest of
    flash but weights and test data (model code, harness, startup, C library).
    ram: ``arena`` (``<prefix>_arena*``), ``stack_reserved`` (the ``.stack``
    section) and ``other`` (the rest: I/O buffers, C library state).
    """
    model_file = f"{prefix}.c"

    def is_model(s: Symbol) -> bool:
        return s.name.startswith(f"{prefix}_") or s.file == model_file \
            or (s.name.startswith("edgec_") and not s.name.startswith(HOOKS))

    weights = img.symbol_bytes(lambda s: s.kind == "OBJECT" and is_model(s) and _in_flash(img, s)
                               and not s.name.startswith((f"{prefix}_tvm_", f"{prefix}_model_data_len")))
    model_code = img.symbol_bytes(lambda s: s.kind == "FUNC" and is_model(s))
    test_data = img.symbol_bytes(lambda s: s.name.startswith("fw_test_") and _in_flash(img, s))
    arena = img.symbol_bytes(lambda s: s.kind == "OBJECT" and (
        s.name in (f"{prefix}_arena", f"{prefix}_arena_store")))
    stack = img.section(".stack")
    stack_reserved = stack.size if stack else 0
    flash = img.flash_bytes
    ram = img.ram_bytes
    return {
        "flash": {
            "total": flash,
            "code": flash - weights - test_data,
            "model_code": model_code,
            "weights": weights,
            "test_data": test_data,
        },
        "ram": {
            "total": ram,
            "arena": arena,
            "stack_reserved": stack_reserved,
            "other": ram - arena - stack_reserved,
        },
        "sections": img.section_sizes(),
    }


def layer_bytes(img: ElfImage, prefix: str = "model") -> dict[int, dict[str, int]]:
    """{layer: {"code": bytes, "weights": bytes}} from the ``<prefix>_l<N>_*`` symbols."""
    rx = layer_symbol(prefix)
    out: dict[int, dict[str, int]] = {}
    for s in img.symbols:
        m = rx.match(s.name)
        if not m:
            continue
        d = out.setdefault(int(m.group(1)), {"code": 0, "weights": 0})
        if s.kind == "FUNC":
            d["code"] += s.size
        elif s.kind == "OBJECT":
            d["weights"] += s.size
    return dict(sorted(out.items()))


def main(argv=None) -> int:
    import argparse
    import json
    ap = argparse.ArgumentParser(prog="python -m edgec.target.elfsize",
                                 description="Flash and RAM of a linked firmware ELF.")
    ap.add_argument("elf")
    ap.add_argument("--prefix", default="model", help="the bundle's name (symbol prefix)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    try:
        img = read(a.elf)
    except EdgecError as e:
        print(f"edgec.target.elfsize: error: {e}")
        return 2
    b = breakdown(img, a.prefix)
    if a.json:
        print(json.dumps({"elf": a.elf, **b}, indent=2, sort_keys=True))
        return 0
    f, r = b["flash"], b["ram"]
    print(f"{a.elf}")
    print(f"  flash {f['total']:>9,} B = code {f['code']:,} (model {f['model_code']:,}) "
          f"+ weights {f['weights']:,} + test data {f['test_data']:,}")
    print(f"  RAM   {r['total']:>9,} B = arena {r['arena']:,} + stack {r['stack_reserved']:,} "
          f"(reserved) + other {r['other']:,}")
    print("  sections: " + ", ".join(f"{k} {v:,}" for k, v in b["sections"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

