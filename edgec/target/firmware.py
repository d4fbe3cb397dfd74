"""Firmware: a bundle linked with edgec's test harness into an ELF that runs on
a microcontroller or its QEMU model.

The harness (``templates/harness/``) is startup code with the vector table (Arm)
or trap vector (RISC-V), a linker script from the target's memory map, UART
output, exit with a status code (Arm semihosting SYS_EXIT_EXTENDED, the SiFive
test device on RISC-V ``virt``), and a ``main`` that runs the model on embedded
test inputs, compares with embedded expected outputs and reports on the
console (``EDGEC-SAMPLE`` / ``EDGEC-RESULT`` lines, see ``main.c.j2``).

Entry points (stable; other parts of edgec and its users call them):

* :func:`add_to_bundle` -- ``edgec build --firmware``: the harness as
  ``firmware/`` in the bundle, for its Makefile's ``make firmware`` / ``make run``;
* :func:`build` -- compile a written bundle plus the harness into a
  :class:`Firmware` (ELF); variants: embedded samples (self-checking), host I/O
  through semihosting files (``hostio``: any number of samples in one run),
  ``trace`` (every layer output), ``profile`` (ticks per layer);
* :func:`run_timeout` -- how long a QEMU run may take.

Running a model on a target (``edgec verify --target cortex-m4``) is
:func:`edgec.commands.run.run_on_target`; the embedded expected outputs come from
:func:`edgec.pipeline.expected_outputs` (edgec's graph interpreter).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..ir import cgen, dtypes
from .. import data
from . import tflm, toolchain
from .emulator import QemuRun, io_specs, run_firmware
from ..ir.errors import EdgecError
from .targets import Target
from ..ir.templating import render

DEFAULT_STACK = 8192
DEFAULT_TEST_SAMPLES = 2
HARNESS_FILES = ("main.c", "startup.c", "test_vectors.c", "test_vectors.h", "edgec_fw.h", "link.ld")
# A linked image for a target without an emulator, or for a size-only build
# that must not fail because the model is larger than a typical part.
UNBOUNDED = 64 * 1024 * 1024


@dataclass
class Firmware:
    """A linked firmware image and where it was built."""
    elf: Path
    dir: Path
    target: Target
    prefix: str
    report: dict
    options: dict = field(default_factory=dict)

    def run(self, timeout: float = 60, icount: bool = False) -> QemuRun:
        """Run in QEMU (host files of the hostio/trace variants are in ``self.dir``); a
        hostio firmware's samples are followed by a progress bar (when shown)."""
        watch = None
        fin = self.dir / "edgec_in.bin"
        if self.options.get("hostio") and fin.is_file():
            ins, outs = io_specs(self.report)
            per_in = sum(s.nbytes for s in ins)
            if per_in:
                watch = (self.dir / "edgec_out.bin", sum(s.nbytes for s in outs), fin.stat().st_size // per_in)
        return run_firmware(self.target, self.elf, cwd=self.dir, timeout=timeout, icount=icount, watch=watch)


def _io_ctx(entries) -> list[dict]:
    out = []
    for i, d in enumerate(entries):
        shape = list(d["shape"])
        dt = d["dtype"]
        out.append({
            "index": i, "shape": shape, "dtype": dt, "ctype": dtypes.c_type(dt),
            "elements": int(np.prod(shape)) if shape else 1,
            "is_float": dtypes.is_float(dt),
            "max_c": "DBL_MAX" if dt == "float64" else "FLT_MAX",
        })
    return out


def link_memory(target: Target, memory: str = "target") -> dict:
    """Flash and RAM regions of the linker script. ``memory="target"``: the target's
    declared sizes, in the QEMU machine's map when the target has one (at most its
    memory), else at the usual Cortex-M / RISC-V addresses; ``"emulator"``: all the
    QEMU machine's memory (measuring models larger than the part, as explore does);
    ``"unbounded"``: the same origins with 64 MB each (size-only builds)."""
    if memory not in ("target", "emulator", "unbounded"):
        raise EdgecError(f"unknown memory layout {memory!r} (target, emulator or unbounded)")
    q = target.qemu
    if q is not None and memory == "emulator":
        m = dict(flash_origin=q.flash_origin, flash_size=q.flash_size,
                 ram_origin=q.ram_origin, ram_size=q.ram_size,
                 memory_note=f"All the memory of QEMU {q.machine} (not the part's).")
    elif q is not None:
        # the part's declared memory (at most the emulator's): a model that does not fit
        # the part fails to link, as it would for the board
        m = dict(flash_origin=q.flash_origin, flash_size=min(q.flash_size, target.flash),
                 ram_origin=q.ram_origin, ram_size=min(q.ram_size, target.ram),
                 memory_note=f"The target's declared memory ({target.flash:,} B flash, {target.ram:,} B RAM) "
                             f"in the memory map of QEMU {q.machine}.")
    elif target.arch == "riscv":
        m = dict(flash_origin=0x80000000, flash_size=target.flash,
                 ram_origin=0x80000000 + max(target.flash, 1 << 22), ram_size=target.ram,
                 memory_note="Typical memory of the target (no emulator).")
    else:
        m = dict(flash_origin=0x00000000, flash_size=target.flash,
                 ram_origin=0x20000000, ram_size=target.ram,
                 memory_note="Typical memory of the target (no emulator) at the usual Cortex-M addresses.")
    if memory == "unbounded":
        m["flash_size"] = m["ram_size"] = UNBOUNDED
        if target.arch == "riscv" and q is None:
            m["ram_origin"] = m["flash_origin"] + UNBOUNDED
        m["memory_note"] = ("Size-only build: regions of 64 MB at the target's addresses "
                            "(fits any model; the budget check is a separate step).")
    return m


def _samples_c(samples, specs: list[dict], which: str) -> list[str]:
    bodies = []
    for k, d in enumerate(specs):
        arrs = [np.asarray(s[k]).astype(dtypes.np_dtype(d["dtype"])).reshape(-1) for s in samples]
        for a in arrs:
            if a.size != d["elements"]:
                raise EdgecError(f"test {which} {k} has {a.size} elements where {d['elements']} "
                                 "are expected")
        bodies.append(cgen.array_body(np.concatenate(arrs), d["dtype"]))
    return bodies


def harness_files(prefix: str, inputs: list[dict], outputs: list[dict], target: Target, *,
                  samples=None, expected=None, rtol: float = 1e-4,
                  stack_size: int = DEFAULT_STACK, memory: str = "target",
                  note: str = "") -> dict[str, str]:
    """The harness sources {file name: text} for a bundle named ``prefix`` whose
    inputs/outputs are ``[{"shape": [...], "dtype": "int8"}, ...]`` (report.json's
    entries). ``samples``: list of samples (each a list of input arrays) to
    embed; ``expected``: their outputs (same structure) or None."""
    if target.is_host:
        raise EdgecError("firmware needs a microcontroller target (not host)")
    if target.arch not in ("arm", "riscv"):
        raise EdgecError(f"no firmware harness for arch {target.arch!r}")
    io = {"inputs": _io_ctx(inputs), "outputs": _io_ctx(outputs)}
    samples = list(samples or [])
    q = target.qemu
    uart = q.uart if q else "none"
    uart_base = q.uart_base if q else 0
    tick_hz = q.cpu_hz if q else (1_000_000_000 if target.arch == "riscv" else 0)
    common = dict(prefix=prefix, PREFIX=prefix.upper(), target=target, io=io, arch=target.arch)
    files = {}
    files["edgec_fw.h"] = render("harness/edgec_fw.h.j2", **common, tick_hz=tick_hz or 1)
    files["startup.c"] = render(f"harness/startup_{target.arch}.c.j2", **common, uart=uart,
                                uart_base=uart_base, exit_base=q.exit_base if q else 0)
    files["link.ld"] = render("harness/link.ld.j2", **common, stack_size=stack_size,
                              **link_memory(target, memory))
    files["main.c"] = render("harness/main.c.j2", **common, rtol_c=cgen.c_float(rtol))
    has_expected = expected is not None and len(samples) > 0
    vec = dict(**common, num_samples=len(samples), has_expected=has_expected,
               note=cgen.comment_text(note, 200))
    if samples:
        vec["inputs"] = _samples_c(samples, io["inputs"], "input")
        if has_expected:
            if len(expected) != len(samples):
                raise EdgecError("expected outputs and test inputs differ in number")
            vec["outputs"] = _samples_c(expected, io["outputs"], "output")
    files["test_vectors.h"] = render("harness/test_vectors.h.j2", **vec)
    files["test_vectors.c"] = render("harness/test_vectors.c.j2", **vec)
    return files


def test_samples_for(g, opts, notes: list | None = None) -> list:
    """The test inputs of ``edgec build --firmware`` for the compiled graph ``g``:
    ``opts.test_inputs`` (a sample file or a list of samples, read and encoded by
    :mod:`edgec.data`: float values for int8 inputs quantized, float features of
    ``--quantized-input`` trees as levels; ``opts.raw_inputs``: the file holds the
    levels), else ``opts.test_samples`` random ones (seed 0).  ``notes`` collects
    what was done to the values."""
    ti = opts.test_inputs
    raw = bool(getattr(opts, "raw_inputs", False))
    if isinstance(ti, (str, os.PathLike)):
        return data.input_samples(g, 0, source=ti, what="test inputs", raw=raw, notes=notes)
    if ti is not None:
        return data.encode(g, list(ti), raw=raw, notes=notes, what="test inputs")
    if raw:
        raise EdgecError("--raw-inputs describes a --test-inputs file: give one")
    return data.random_samples(g, int(getattr(opts, "test_samples", DEFAULT_TEST_SAMPLES)), seed=0)


def add_to_bundle(bundle, prefix: str, target: Target, opts, inputs: list[dict],
                  outputs: list[dict], samples: list, expected, notes: list[str]) -> dict:
    """``edgec build --firmware``: add ``firmware/`` (harness sources, linker
    script, test vectors: ``samples`` from :func:`test_samples_for` with their
    ``expected`` outputs from edgec's interpreter) to the bundle; its Makefile's
    ``make firmware`` links ``firmware.elf`` and ``make run`` runs it in QEMU.
    ``inputs``/``outputs``: the report's entries.  Returns what the report says
    about the test inputs (``source``, ``samples``, ``notes``)."""
    ti = opts.test_inputs
    files = harness_files(prefix, inputs, outputs, target,
                          samples=samples, expected=expected,
                          note="Test inputs: " + ("given with the build" if ti is not None
                                                  else "random (seed 0)") +
                          "; expected outputs: edgec's graph interpreter.")
    for name, text in files.items():
        bundle.add(f"firmware/{name}", text)
    source = Path(ti).name if isinstance(ti, (str, os.PathLike)) else \
        ("arrays" if ti is not None else "random (seed 0)")
    info = {"source": source, "samples": len(samples), "notes": notes}
    if getattr(opts, "raw_inputs", False):
        info["raw_inputs"] = True     # the file's integer levels, as they are
    return info


def build(bundle_dir, report: dict, target: Target, out_dir, *, samples=None, expected=None,
          hostio: bool = False, trace: bool = False, profile: bool = False, bench: bool = False,
          opt_level: str = "s", lto: bool = False, defines=(), memory: str = "target",
          stack_size: int = DEFAULT_STACK, rtol: float = 1e-4) -> Firmware:
    """Compile the bundle in ``bundle_dir`` (written by ``Bundle.write``; ``report``
    is its report.json) with the harness into ``out_dir/firmware.elf``.

    ``samples``/``expected`` are embedded (self-checking firmware); ``hostio``
    reads inputs from ``edgec_in.bin`` and writes ``edgec_out.bin`` in the run
    directory instead; ``trace`` appends every layer output to
    ``edgec_trace.bin``; ``profile`` prints ticks per layer; ``bench`` measures
    the second inference of sample 0.  Model and harness are compiled with
    ``-std=c99 -Wall -Wextra -Werror``."""
    bundle_dir = Path(bundle_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = report["name"]
    files = harness_files(prefix, report["inputs"], report["outputs"], target,
                          samples=None if hostio else samples, expected=None if hostio else expected,
                          rtol=rtol, stack_size=stack_size, memory=memory)
    for name, text in files.items():
        (out / name).write_text(text)
    flags = toolchain.opt_flags(opt_level, lto)
    defs = []
    if trace:
        defs.append("-DEDGEC_TRACE")
    if profile:
        defs.append("-DEDGEC_PROFILE")
    if hostio:
        defs.append("-DEDGEC_FW_HOSTIO")
    if bench:
        defs.append("-DEDGEC_FW_BENCH")
    defs += [d if d.startswith("-D") else f"-D{d}" for d in defines]
    driver, libs = None, ("-lm",)
    if report.get("backend") == "tflm":  # C++ against the user's TensorFlow Lite Micro
        inst = tflm.tflm_install(target_name=target.name)
        objs = tflm.firmware_objects(target, bundle_dir, prefix, out / "obj" / "model",
                                     [*flags, *defs], inst, harness_dir=out)
        driver, libs = tflm.cxx_path(target), (str(inst.lib), "-lm")
        defs.append("-DEDGEC_FW_ARENA_USED")
    else:
        objs = toolchain.compile_objects(target, [bundle_dir / f"{prefix}.c"],
                                         out / "obj" / "model", [bundle_dir], [*flags, *defs],
                                         strict=True)
        objs += [bundle_dir / o for o in report.get("link_objects", [])]
    objs += toolchain.compile_objects(
        target, [out / "main.c", out / "startup.c", out / "test_vectors.c"], out / "obj" / "harness",
        [out, bundle_dir], [*flags, "-fno-tree-loop-distribute-patterns", *defs], strict=True)
    elf = out / "firmware.elf"
    ldflags = ["-T", str(out / "link.ld"), "-nostartfiles", "-Wl,--gc-sections",
               f"-Wl,-Map={out / 'firmware.map'}", *(["-flto", f"-O{opt_level}"] if lto else [])]
    toolchain.link(target, objs, elf, ldflags, libs=libs, driver=driver)
    return Firmware(elf, out, target, prefix, report,
                    dict(hostio=hostio, trace=trace, profile=profile, bench=bench,
                         opt_level=opt_level, lto=lto, memory=memory))


def run_timeout(report: dict, samples: int, trace: bool = False) -> float:
    """A generous QEMU timeout: about 200 instructions per MAC (soft float on a
    Cortex-M3) at 100 M instructions/s, plus a minute. ``EDGEC_QEMU_TIMEOUT``
    (seconds) overrides it."""
    env = os.environ.get("EDGEC_QEMU_TIMEOUT")
    if env:
        try:
            return float(env)
        except ValueError:
            raise EdgecError(f"bad EDGEC_QEMU_TIMEOUT {env!r} (seconds)") from None
    per = max(int(report.get("macs", 0)), 1) * 2e-6
    return 60.0 + samples * per * (3 if trace else 1)
