"""``--backend tvm``: Apache TVM's kernels in edgec's bundle, built and run for real.

Every check compiles the bundle's C with a real compiler and runs it against the
reference runtime (onnxruntime, ai-edge-litert); none inspects strings only.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, have, shared_model

pytestmark = pytest.mark.tvm

MNIST = "onnx/mnist-8.onnx"
FLOAT_TFLITE = ["mlperf_tiny/vww_96_float.tflite", "mlperf_tiny/pretrainedResnet.tflite"]


def _need_tvm():
    pytest.importorskip("tvm", reason="the tvm extra (apache-tvm) is not installed")


def m4_board():
    """cortex-m4 with all the memory of its QEMU board: the float MLPerf models need more
    RAM than the target's typical part declares (the fit check would refuse them)."""
    from edgec.target import targets
    t = targets.load("cortex-m4")
    return t.with_memory(t.qemu.flash_size, t.qemu.ram_size)


def _verify(rel, **kw):
    _need_tvm()
    from edgec.commands.verify import verify
    res = verify(shared_model(rel), backend="tvm", **kw)
    assert res.outputs
    for c in res.outputs:
        assert c.ok, c.line()
        assert c.max_abs <= 1e-4 * c.ref_max, c.line()
    return res


def test_mnist_host_matches_onnxruntime_under_sanitizers():
    """End to end (the CI check): TVM's kernels + edgec's driver, compiled with
    -Werror and AddressSanitizer/UBSan, match onnxruntime within 1e-4 relative."""
    _verify(MNIST, n=5, sanitize=True)


@pytest.mark.parametrize("rel", FLOAT_TFLITE)
def test_float_mlperf_host_matches_litert(rel):
    _verify(rel, n=3)


@pytest.mark.parametrize("schedule,codegen", [("inline", "c"), ("none", "c"), ("local", "llvm")])
def test_other_schedules_and_llvm_match_too(schedule, codegen):
    """The other schedules, and the kernels as an object by TVM's LLVM (host triple)."""
    res = _verify(MNIST, n=3, options={"tvm_schedule": schedule, "tvm_codegen": codegen})
    assert res.outputs[0].ok


def _build(tmp_path, rel=MNIST, target="host", name="model", schedule="local", codegen="c"):
    _need_tvm()
    from edgec.pipeline import Options, compile_full
    bundle, g = compile_full(shared_model(rel), Options(target=target, backend="tvm", name=name,
                                                        extra={"tvm_schedule": schedule,
                                                               "tvm_codegen": codegen}))
    tname = getattr(target, "name", target)
    return bundle.write(tmp_path / f"{name}_{tname}_{schedule}_{codegen}"), bundle


def _objects(d, report):
    return [str(d / o) for o in report.get("link_objects", [])]


def _defined(libs) -> set:
    out = set()
    for lib in libs:
        r = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True)
        out |= {ln.split()[-1].split("@")[0] for ln in r.stdout.splitlines() if ln.strip()}
    return out


def _libc_paths(cc="gcc", flags=()):
    paths = []
    for lib in ("libc.so.6", "libm.so.6"):
        p = subprocess.run([cc, *flags, f"-print-file-name={lib}"], capture_output=True,
                           text=True).stdout.strip()
        if os.path.isabs(p) and os.path.exists(p):
            paths.append(p)
    return paths


@pytest.mark.parametrize("codegen", ["c", "llvm"])
def test_bundle_needs_nothing_of_tvm(tmp_path, codegen):
    """The bundle compiles from its own files (the TVM headers it ships; with
    --tvm-codegen llvm, the kernels' object) and the linked model needs only its
    own symbols and libc/libm; two models live in one program without clashing."""
    a, rep = _build(tmp_path, name="mnist_a", codegen=codegen)
    b, rep_b = _build(tmp_path, name="mnist_b", codegen=codegen)
    assert rep.report["backend"] == "tvm"
    for rel in ("tvm/ffi/c_api.h", "tvm/runtime/c_backend_api.h", "dlpack/dlpack.h"):
        assert (a / rel).is_file(), rel
    objs = []
    for d, name, r in ((a, "mnist_a", rep), (b, "mnist_b", rep_b)):
        obj = tmp_path / f"{name}_driver.o"
        subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", f"-I{d}", "-c",
                        str(d / f"{name}.c"), "-o", str(obj)], check=True)
        # the model as one relocatable object: driver (+ kernels' object)
        whole = tmp_path / f"{name}.o"
        subprocess.run(["ld", "-r", str(obj), *_objects(d, r.report), "-o", str(whole)], check=True)
        objs.append(whole)
    assert bool(rep.report.get("link_objects")) == (codegen == "llvm")
    undefined = set()
    for obj in objs:
        r = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True, check=True)
        undefined |= {ln.split()[-1] for ln in r.stdout.splitlines() if ln.strip()}
    libc = _defined(_libc_paths())
    assert libc, "cannot list libc/libm symbols"
    undefined -= {"_GLOBAL_OFFSET_TABLE_"}   # made by the linker (the LLVM object is PIC)
    assert undefined <= libc, f"not from libc/libm: {sorted(undefined - libc)}"
    assert not any(s.startswith(("TVM", "__tvm")) for s in undefined)
    # both models in one program: no duplicate symbols, both run
    main_c = tmp_path / "main.c"
    main_c.write_text(
        '#include "mnist_a.h"\n#include "mnist_b.h"\n'
        "static float x[MNIST_A_INPUT0_ELEMENTS], ya[10], yb[10];\n"
        "int main(void) { int i; for (i = 0; i < MNIST_A_INPUT0_ELEMENTS; ++i) x[i] = (float)(i % 7) / 7.0f;\n"
        "  if (mnist_a_invoke(x, ya) || mnist_b_invoke(x, yb)) return 1;\n"
        "  for (i = 0; i < 10; ++i) if (ya[i] != yb[i]) return 2;\n  return 0; }\n")
    exe = tmp_path / "two"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", f"-I{a}", f"-I{b}", str(main_c), *map(str, objs),
                    "-lm", "-o", str(exe)], check=True)
    assert subprocess.run([str(exe)]).returncode == 0


@pytest.mark.skipif(not have("arm-none-eabi-gcc"), reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("codegen", ["c", "llvm"])
def test_cortex_m4_bundle_links_without_tvm(tmp_path, codegen):
    """Cross-compiled for the Cortex-M4 and linked with newlib only: every symbol resolves."""
    d, bundle = _build(tmp_path, target="cortex-m4", codegen=codegen)
    from edgec.target import targets
    tgt = targets.load("cortex-m4")
    main_c = tmp_path / "main.c"
    main_c.write_text('#include "model.h"\nstatic float x[MODEL_INPUT0_ELEMENTS], y[10];\n'
                      "int main(void) { return model_invoke(x, y); }\n")
    r = subprocess.run(["arm-none-eabi-gcc", *tgt.cflags, "-std=c99", "-Wall", "-Wextra", "-Werror", "-Os",
                        "-ffunction-sections", "-fdata-sections", f"-I{d}", str(d / "model.c"), str(main_c),
                        *_objects(d, bundle.report),
                        "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections", "-lm",
                        "-o", str(tmp_path / "fw.elf")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["arm-none-eabi-nm", "-u", str(tmp_path / "fw.elf")], capture_output=True, text=True)
    assert not [ln for ln in r.stdout.splitlines() if "TVM" in ln or "tvm" in ln]


HIGH_WATER_C = r"""
#include <stdio.h>
#include <string.h>
#include "model.h"
uint8_t model_arena[MODEL_ARENA_SIZE] __attribute__((aligned(16)));
static float x[MODEL_INPUT0_ELEMENTS], y[MODEL_OUTPUT0_ELEMENTS];
static long high_water(int pattern)
{
  long i, top = 0;
  memset(model_arena, pattern, sizeof model_arena);
  if (model_invoke(x, y) != 0) return -1;
  for (i = 0; i < (long)sizeof model_arena; ++i)
    if (model_arena[i] != (uint8_t)pattern) top = i + 1;
  return top;
}
int main(void)
{
  long i, a, b;
  for (i = 0; i < MODEL_INPUT0_ELEMENTS; ++i) x[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
  a = high_water(0xA5);
  b = high_water(0x5A);
  printf("%ld %ld %d\n", a, b, MODEL_ARENA_SIZE);
  return 0;
}
"""


@pytest.mark.parametrize("rel,schedule", [(MNIST, "none"), (MNIST, "local"), (FLOAT_TFLITE[1], "local"),
                                          (FLOAT_TFLITE[1], "inline")])
def test_reported_arena_is_what_the_model_uses(tmp_path, rel, schedule):
    """Fill the (application-provided) arena with a pattern, run, find the highest
    byte the model wrote: it is exactly the reported arena size, so the workspace
    computed from the kernels' requests (at the top of the arena) is neither short
    (the allocator would fail the inference) nor padded."""
    d, bundle = _build(tmp_path, rel, schedule=schedule)
    main_c = tmp_path / "hw.c"
    main_c.write_text(HIGH_WATER_C)
    exe = tmp_path / "hw"
    subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-DMODEL_EXTERNAL_ARENA",
                    f"-I{d}", str(d / "model.c"), str(main_c), "-lm", "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    a, b, size = map(int, out)
    rep = bundle.report
    assert size == rep["arena_bytes"] == rep["tvm"]["workspace_offset"] + rep["tvm"]["workspace_bytes"]
    assert (rep["tvm"]["workspace_bytes"] > 0) == (schedule != "inline")
    assert max(a, b) == size


HIGH_WATER_FW_C = r"""
#include <stdint.h>
#include <string.h>
#include "edgec_fw.h"
#include "model.h"
uint8_t model_arena[MODEL_ARENA_SIZE] __attribute__((aligned(16)));
static float x[MODEL_INPUT0_ELEMENTS], y[MODEL_OUTPUT0_ELEMENTS];
static uint32_t high_water(int pattern)
{
  uint32_t i, top = 0;
  memset(model_arena, pattern, sizeof model_arena);
  if (model_invoke(x, y) != 0) return 0xFFFFFFFFu;
  for (i = 0; i < (uint32_t)sizeof model_arena; ++i)
    if (model_arena[i] != (uint8_t)pattern) top = i + 1;
  return top;
}
int main(void)
{
  uint32_t i, a, b;
  fw_stack_paint();
  for (i = 0; i < MODEL_INPUT0_ELEMENTS; ++i) x[i] = (float)((i * 37u) % 101u) / 101.0f - 0.5f;
  a = high_water(0xA5);
  b = high_water(0x5A);
  fw_puts("EDGEC-HW a="); fw_put_u64(a);
  fw_puts(" b="); fw_put_u64(b);
  fw_puts(" size="); fw_put_u64(MODEL_ARENA_SIZE);
  fw_puts(" stack="); fw_put_u64(fw_stack_used());
  fw_puts("\n");
  return 0;
}
"""


def _qemu_ok():
    if not (have("arm-none-eabi-gcc") and have("qemu-system-arm")):
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed")


@pytest.mark.qemu
@pytest.mark.parametrize("rel,schedule,codegen", [
    (MNIST, "none", "c"), (MNIST, "local", "c"), (MNIST, "none", "llvm"),
    pytest.param(FLOAT_TFLITE[0], "local", "c", marks=pytest.mark.slow),
    pytest.param(FLOAT_TFLITE[1], "local", "c", marks=pytest.mark.slow),
    pytest.param(FLOAT_TFLITE[1], "none", "c", marks=pytest.mark.slow),
    pytest.param(FLOAT_TFLITE[1], "local", "llvm", marks=pytest.mark.slow)])
def test_cortex_m4_arena_high_water_in_qemu(tmp_path, rel, schedule, codegen):
    """In QEMU (Cortex-M4): the firmware provides the arena, fills it with a
    pattern, runs the model and finds the highest byte written. It is the
    reported arena size exactly."""
    _qemu_ok()
    from edgec.target import firmware, targets, toolchain
    from edgec.target.emulator import run_firmware
    tgt = m4_board()
    d, bundle = _build(tmp_path, rel, target=tgt, schedule=schedule, codegen=codegen)
    # the harness's startup code, linker script and platform layer; our own main
    fw = tmp_path / "fw"
    fw.mkdir()
    rep = bundle.report
    for name, text in firmware.harness_files("model", rep["inputs"], rep["outputs"], tgt).items():
        (fw / name).write_text(text)
    (fw / "hw_main.c").write_text(HIGH_WATER_FW_C)
    flags = [*toolchain.opt_flags("s"), "-DMODEL_EXTERNAL_ARENA"]
    objs = toolchain.compile_objects(tgt, [d / "model.c"], tmp_path / "o1", [d], flags, strict=True)
    objs += toolchain.compile_objects(tgt, [fw / "hw_main.c", fw / "startup.c"], tmp_path / "o2",
                                      [fw, d], [*flags, "-fno-tree-loop-distribute-patterns"],
                                      strict=True)
    objs += [Path(o) for o in _objects(d, rep)]
    elf = toolchain.link(tgt, objs, tmp_path / "hw.elf",
                         ["-T", str(fw / "link.ld"), "-nostartfiles", "-Wl,--gc-sections"])
    r = run_firmware(tgt, elf, cwd=tmp_path, timeout=300)
    assert r.returncode == 0 and r.lines("HW"), r.describe()
    f = r.fields("HW")
    a, b, size = int(f["a"]), int(f["b"]), int(f["size"])
    assert size == bundle.report["arena_bytes"]
    assert max(a, b) == size, (a, b, size)


@pytest.mark.qemu
@pytest.mark.parametrize("rel,codegen", [
    (MNIST, "c"), (MNIST, "llvm"),
    pytest.param(FLOAT_TFLITE[0], "c", marks=pytest.mark.slow),
    pytest.param(FLOAT_TFLITE[1], "c", marks=pytest.mark.slow),
    pytest.param(FLOAT_TFLITE[0], "llvm", marks=pytest.mark.slow),
    pytest.param(FLOAT_TFLITE[1], "llvm", marks=pytest.mark.slow)])
def test_cortex_m4_qemu_matches_reference(rel, codegen):
    """`edgec verify --backend tvm --target cortex-m4 [--tvm-codegen llvm]`: the firmware in QEMU."""
    _qemu_ok()
    res = _verify(rel, n=3, target=m4_board(), options={"tvm_codegen": codegen})
    assert res.extra["firmware"]["machine"] == "mps2-an386"


def test_bundle_builds_with_its_makefile_and_is_deterministic(tmp_path, edgec_cli):
    _need_tvm()
    outs = []
    for seed in ("1", "4242"):
        out = tmp_path / f"b{seed}"
        r = edgec_cli("build", shared_model(MNIST), "--backend", "tvm", "--target", "host", "-o", out,
                      env={"PYTHONHASHSEED": seed}, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    for f in files:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    r = subprocess.run(["make", "-C", str(outs[0]), "CFLAGS=-std=c99 -O1 -Wall -Wextra -Werror"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rep = json.loads((outs[0] / "report.json").read_text())
    assert rep["backend"] == "tvm" and rep["tvm"]["tvm_version"]
    assert rep["weights_bytes"] == sum(L["weights_bytes"] for L in rep["layers"]) > 0
    h = (outs[0] / "model.h").read_text()
    assert f"#define MODEL_ARENA_SIZE {rep['arena_bytes']}" in h


def test_without_the_extra_one_clear_line(tmp_path):
    """With TVM missing, `edgec build --backend tvm` says how to install it."""
    code = ("import sys; sys.modules['tvm'] = None; from edgec.cli import main; "
            "sys.argv = ['edgec'] + sys.argv[1:]; main()")
    r = subprocess.run([sys.executable, "-c", code, "build", str(shared_model(MNIST)), "--backend", "tvm",
                        "-o", str(tmp_path / "x")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'edgec[tvm]'" in lines[0], r.stderr


def test_workspace_replay():
    """The workspace replay follows TVM's C: nested LIFO blocks, 16-byte aligned."""
    from edgec.backends.tvm import workspace_of
    body = """
  float* a = ((float*)((float*)TVMBackendAllocWorkspace(1, dev_id, (uint64_t)10ULL, 2, 32)));
  float* b = ((float*)((float*)TVMBackendAllocWorkspace(1, dev_id, (uint64_t)100ULL, 2, 32)));
  if (TVMBackendFreeWorkspace(1, dev_id, b) != 0) {
  }
  float* c = ((float*)((float*)TVMBackendAllocWorkspace(1, dev_id, (uint64_t)40ULL, 2, 32)));
  float t[4];
  if (TVMBackendFreeWorkspace(1, dev_id, c) != 0) {
  }
  if (TVMBackendFreeWorkspace(1, dev_id, a) != 0) {
  }
"""
    w = workspace_of(body)
    assert (w.peak, w.depth, w.blocks, w.stack_arrays) == (116, 2, [10, 100, 40], 16)
    from edgec.ir.errors import EdgecError
    bad = body.replace("dev_id, b)", "dev_id, a)", 1)
    with pytest.raises(EdgecError, match="out of order"):
        workspace_of(bad)


def test_int8_models_are_refused_with_a_pointer_to_native(tmp_path, edgec_cli):
    """TVM would run a quantized TFLite model in float: refused, in one line."""
    _need_tvm()
    from conftest import EXAMPLE_KWS
    r = edgec_cli("build", EXAMPLE_KWS, "--backend", "tvm", "-o", tmp_path / "x", cwd=ROOT)
    assert r.returncode == 2
    assert "--backend native" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
