"""``edgec bench``: instructions per inference and per layer in QEMU, flash and RAM.

QEMU has no cycle model; it counts instructions.  Under ``-icount shift=0``
every instruction takes 1 ns of virtual time, so the Cortex-M SysTick (on the
processor clock, ``cpu_hz`` of the target's QEMU machine) advances by one tick
every ``1e9 / cpu_hz`` instructions (40 on the 25 MHz mps2 boards) and the
RISC-V ``instret`` counter counts instructions exactly.  The counts are
identical from run to run (``runs`` checks that).

Two firmware images are built from the same bundle:

* the plain one (what a user would flash, plus the harness): instructions per
  inference (the second inference of sample 0, as TFLite Micro's benchmarks
  measure it), its flash and RAM from the ELF (:mod:`edgec.target.elfsize`) and its
  stack high-water mark;
* a profiling one (``-DEDGEC_PROFILE``: a hook before and after every layer):
  instructions per layer.  The hooks cost a few instructions per layer, and
  each layer's count is rounded to whole ticks.

Both check their outputs against edgec's interpreter: a benchmark of wrong
outputs is not reported.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import data
from ..target import elfsize, firmware, targets
from ..target.tflm import tflm_install
from ..pipeline import Options, compile_full, expected_outputs, load
from ..ir.errors import CheckFailed, EdgecError


@dataclass
class BenchResult:
    model: str
    target: str
    machine: str
    samples: int
    instructions: int                 # per inference (sample 0, second inference)
    instructions_min: int
    instructions_max: int
    macs: int
    tick_instructions: float          # instructions per tick (resolution)
    runs: int
    repeatable: bool
    flash: dict = field(default_factory=dict)
    ram: dict = field(default_factory=dict)
    layers: list[dict] = field(default_factory=list)
    qemu: str = ""
    options: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)     # what was done to the given inputs

    @property
    def macs_per_instruction(self) -> float:
        return self.macs / self.instructions if self.instructions else 0.0

    def to_json(self) -> dict:
        return {
            "schema": "edgec-bench/1",
            "model": self.model, "target": self.target, "machine": self.machine,
            "samples": self.samples,
            "instructions_per_inference": self.instructions,
            "instructions_min": self.instructions_min, "instructions_max": self.instructions_max,
            "macs": self.macs, "macs_per_instruction": round(self.macs_per_instruction, 4),
            "tick_instructions": self.tick_instructions,
            "runs": self.runs, "repeatable": self.repeatable,
            "flash": self.flash, "ram": self.ram, "layers": self.layers,
            "qemu": self.qemu, "options": self.options,
            **({"notes": self.notes} if self.notes else {}),
        }


def _ticks_per_sample(run) -> list[int]:
    out = []
    for ln in run.lines("SAMPLE"):
        kv = dict(w.split("=", 1) for w in ln.split() if "=" in w)
        out.append(int(kv["ticks"]))
    return out


def _run_ok(fw: firmware.Firmware, timeout: float):
    r = fw.run(timeout=timeout, icount=True)
    if not r.ok:
        raise CheckFailed(f"{fw.target.name} (QEMU {fw.target.qemu.machine}): {r.describe()}")
    return r


def bench(model, target: str = targets.DEFAULT_TARGET, n: int = 1, seed: int = 0,
          inputs_file: str | None = None, opt_level: str = "s", lto: bool = False,
          layers: bool = True, runs: int = 2, input_shapes=None, work_dir: str | None = None,
          timeout: float | None = None, options: dict | None = None,
          backend: str = "native", compress=None, optimize: str = "speed",
          raw_inputs: bool = False, fit_check: bool = True) -> BenchResult:
    """``backend="tflm"``: the TensorFlow Lite Micro bundle linked with the user's
    TFLM (TFLM_DIR, TFLM_LIB), built and measured the same way.  ``compress`` (an
    edgec.passes.compress.CompressConfig): benchmark the low-rank / pruned / binarized model.
    ``inputs_file`` / ``raw_inputs``: as for :func:`edgec.commands.verify.verify`."""
    tgt = targets.load(target)
    if tgt.qemu is None:
        raise EdgecError(f"target {tgt.name} has no emulator to benchmark on (no [qemu] section)")
    if runs < 1:
        raise EdgecError("--runs must be at least 1")
    model = Path(model)
    g0 = load(model, input_shapes)
    notes: list[str] = []
    samples = data.input_samples(g0, n, seed, inputs_file, raw=raw_inputs, notes=notes)
    if not samples:
        raise EdgecError("no input samples to benchmark with")
    opts = Options(target=tgt, backend=backend, name="model", opt_level=opt_level, lto=lto,
                   optimize=optimize, extra=options, compress=compress, fit_check=fit_check)
    if backend == "tflm":
        inst = tflm_install(target_name=tgt.name)  # says what to set before building
        if opts.tflm_check is None:
            opts.tflm_check = False
        if inst.release:
            layers = False  # TFLM's release builds call no profiler: no per-layer counts
    tmp = tempfile.TemporaryDirectory(prefix="edgec-bench-") if work_dir is None else None
    work = Path(work_dir or tmp.name)
    try:
        bundle, g = compile_full(g0, opts)
        bdir = bundle.write(work / "bundle")
        if g is not None:
            samples = data.encode(g, samples, notes=notes)
        expected = expected_outputs(g if g is not None else g0, samples)
        rep = bundle.report
        to = timeout or firmware.run_timeout(rep, len(samples) + 1)
        plain = firmware.build(bdir, rep, tgt, work / "plain", samples=samples, expected=expected,
                               bench=True, opt_level=opt_level, lto=lto)
        per_run = []
        first = None
        for _ in range(runs):
            r = _run_ok(plain, to)
            first = first or r
            per_run.append(_ticks_per_sample(r))
        if any(len(t) != len(samples) for t in per_run):
            raise CheckFailed("the firmware did not report every sample")
        repeatable = all(t == per_run[0] for t in per_run)
        scale = 1e9 / tgt.qemu.cpu_hz
        ticks = per_run[0]
        instr = [round(t * scale) for t in ticks]

        img = elfsize.read(plain.elf)
        sizes = elfsize.breakdown(img, plain.prefix)
        stack_used = int(first.fields("STACK").get("used", 0))
        ram = dict(sizes["ram"])
        ram["stack_used"] = stack_used
        ram["static_other"] = ram.pop("other")
        ram["other"] = ram["static_other"] + stack_used
        ram["used"] = ram["arena"] + ram["other"]
        flash = dict(sizes["flash"])
        flash["firmware"] = flash["total"] - flash["test_data"]

        layer_rows = []
        if layers:
            prof = firmware.build(bdir, rep, tgt, work / "profile", samples=samples[:1],
                                  expected=expected[:1], bench=True, profile=True,
                                  opt_level=opt_level, lto=lto)
            pr = _run_ok(prof, to)
            lt = {}
            for ln in pr.lines("LAYER"):
                parts = ln.split()
                lt[int(parts[0])] = int(parts[1].split("=", 1)[1])
            per_layer_bytes = elfsize.layer_bytes(img, plain.prefix)
            for L in rep["layers"]:
                t = lt.get(L["index"])
                li = round(t * scale) if t is not None else None
                layer_rows.append({
                    "index": L["index"], "op": L["op"], "name": L["name"],
                    "output_shape": L["output_shapes"][0] if L["output_shapes"] else [],
                    "macs": L["macs"], "instructions": li,
                    "macs_per_instruction": round(L["macs"] / li, 4) if li else None,
                    "code_bytes": per_layer_bytes.get(L["index"], {}).get("code", 0),
                    "weights_bytes": per_layer_bytes.get(L["index"], {}).get("weights", 0),
                })
        return BenchResult(
            model=model.name, target=tgt.name, machine=tgt.qemu.machine, samples=len(samples),
            instructions=instr[0], instructions_min=min(instr), instructions_max=max(instr),
            macs=int(rep["macs"]), tick_instructions=scale, runs=runs, repeatable=repeatable,
            flash=flash, ram=ram, layers=layer_rows,
            qemu=" ".join(first.command[:-2] + ["-kernel", "firmware.elf"]),
            options={"backend": backend, "opt_level": opt_level, "lto": lto, "optimize": optimize,
                     "kernels": opts.kernels or "auto", "seed": seed,
                     "inputs": inputs_file or "random"},
            notes=notes)
    finally:
        if tmp is not None:
            tmp.cleanup()
