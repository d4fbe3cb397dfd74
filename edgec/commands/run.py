"""Run a compiled model on a microcontroller target in its emulator (what ``edgec verify
--target cortex-m4`` does): the pipeline builds the bundle, the firmware harness links it,
QEMU runs every sample through semihosting files."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import data
from ..ir.errors import CheckFailed, EdgecError
from ..pipeline import compile_full
from ..target import elfsize, firmware, targets
from ..target.emulator import io_specs, parse_trace, read_outputs, write_samples


def run_on_target(g0, opts, samples, work, layers: bool, notes: list | None = None):
    """Compile ``g0`` for ``opts.target``, run every sample (encoded for the compiled
    graph by :func:`edgec.data.encode`, what it did added to ``notes``) in one QEMU run
    (inputs and outputs through semihosting files), and return
    ``(outputs per sample, trace records or None, bundle, lowered graph, info)``.
    A firmware that hangs, faults or fails raises :class:`CheckFailed` saying so."""
    tgt = targets.load(opts.target)
    if tgt.is_host:
        raise EdgecError("run_on_target needs a microcontroller target")
    if tgt.qemu is None:
        raise EdgecError(f"target {tgt.name} has no emulator to verify on (no [qemu] section); "
                         "`edgec build --firmware` still builds it")
    work = Path(work)
    o = dataclasses.replace(opts, firmware=False)
    bundle, g = compile_full(g0, o)
    bdir = bundle.write(work / "bundle")
    fw = firmware.build(bdir, bundle.report, tgt, work / "firmware", hostio=True, trace=layers,
                        opt_level=opts.opt_level, lto=opts.lto)
    ins, outs_spec = io_specs(bundle.report)
    samples = data.encode(g, samples, notes=notes)
    write_samples(fw.dir / "edgec_in.bin", samples, ins)
    for f in ("edgec_out.bin", "edgec_trace.bin"):
        (fw.dir / f).unlink(missing_ok=True)
    res = fw.run(timeout=firmware.run_timeout(bundle.report, len(samples), layers))
    if not res.ok:
        raise CheckFailed(f"{tgt.name} (QEMU {tgt.qemu.machine}): {res.describe()}")
    ran = res.fields("RESULT").get("samples")
    if ran is None or int(ran) != len(samples):
        raise CheckFailed(f"{tgt.name}: the firmware ran {ran} samples, {len(samples)} were given")
    outs = read_outputs((fw.dir / "edgec_out.bin").read_bytes(), outs_spec, len(samples))
    trace = parse_trace((fw.dir / "edgec_trace.bin").read_bytes()) if layers else None
    sizes = elfsize.breakdown(elfsize.read(fw.elf), fw.prefix)
    st = res.fields("STACK")
    info = {
        "target": tgt.name, "machine": tgt.qemu.machine, "status": res.status,
        "seconds": round(res.seconds, 3), "command": " ".join(res.command),
        "flash_bytes": sizes["flash"]["total"], "ram_bytes": sizes["ram"]["total"],
        "stack_used": int(st.get("used", 0)),
    }
    return outs, trace, bundle, g, info
