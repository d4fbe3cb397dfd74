"""Microcontroller targets end to end: firmware built with the cross compilers,
run in QEMU, compared with the reference runtimes; benchmarks; failure modes.

Not marked slow (CI runs them every time): the bundled KWS model verified
bit-exact on cortex-m4 (every layer) and riscv32, its bundle's own
`make firmware run`, repeatable bench counts, and a crashing / hanging firmware
reported as such."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import EXAMPLE_KWS, ROOT, have, shared_model

pytestmark = pytest.mark.qemu

INT8 = ["kws_ref_model.tflite", "vww_96_int8.tflite", "pretrainedResnet_quant.tflite",
        "ad01_int8.tflite"]
FLOAT = ["vww_96_float.tflite", "pretrainedResnet.tflite", "ad01_fp32.tflite"]


def need(*tools):
    for t in tools:
        if not have(t):
            pytest.skip(f"{t} not installed (make deps-apt)")


def need_arm():
    need("arm-none-eabi-gcc", "qemu-system-arm")


def emulated_part(target: str):
    """The core with all the memory of its QEMU board as the part's memory: the MLPerf
    models larger than a typical cortex-m3 / m4 part still run in the emulator."""
    from edgec.target import targets
    t = targets.load(target)
    return t.with_memory(t.qemu.flash_size, t.qemu.ram_size)


def _bit_exact(res, min_layers):
    assert res.outputs, "no outputs compared"
    for c in res.outputs + res.layers:
        assert c.ok, c.line()
        assert c.exact and c.mismatches == 0, c.line()
    assert len(res.layers) >= min_layers
    assert res.extra["firmware"]["status"] == "pass"


def _kws_firmware(tmp_path, target="cortex-m4", defines=(), samples=2):
    from edgec.target import firmware, targets
    from edgec import pipeline
    from edgec.pipeline import Options, compile_full, load
    from edgec.data import random_samples
    g0 = load(EXAMPLE_KWS)
    bundle, g = compile_full(g0, Options(target=target, name="kws"))
    bdir = bundle.write(tmp_path / "bundle")
    s = random_samples(g0, samples, seed=1)
    return firmware.build(bdir, bundle.report, targets.load(target), tmp_path / "fw",
                          samples=s, expected=pipeline.expected_outputs(g, s), defines=defines)


# ---- every run -----------------------------------------------------------------

def test_kws_bit_exact_in_qemu_cortex_m4_every_layer():
    """The CI end-to-end run: bundled model, compiled with arm-none-eabi-gcc, run in
    qemu-system-arm (mps2-an386), every layer compared with TFLite Micro."""
    need_arm()
    from edgec.commands.verify import verify
    res = verify(EXAMPLE_KWS, target="cortex-m4", n=4, layers=True, compare_litert=False)
    assert res.reference == "TFLite Micro interpreter"
    _bit_exact(res, 12)
    fw = res.extra["firmware"]
    assert fw["machine"] == "mps2-an386"
    assert 0 < fw["stack_used"] < 8192
    assert fw["flash_bytes"] > 27_000 and fw["ram_bytes"] > 16_000


def test_kws_bit_exact_on_riscv32():
    need("riscv64-unknown-elf-gcc", "qemu-system-riscv32")
    from edgec.commands.verify import verify
    res = verify(EXAMPLE_KWS, target="riscv32", n=2, layers=True, compare_litert=False)
    _bit_exact(res, 12)
    assert res.extra["firmware"]["machine"] == "virt"


def test_self_checking_firmware_passes_and_detects_a_wrong_expectation(tmp_path):
    need_arm()
    from edgec.target import firmware, targets
    from edgec import pipeline
    from edgec.pipeline import Options, compile_full, load
    from edgec.data import random_samples
    g0 = load(EXAMPLE_KWS)
    bundle, g = compile_full(g0, Options(target="cortex-m4", name="kws"))
    bdir = bundle.write(tmp_path / "bundle")
    s = random_samples(g0, 3, seed=5)
    exp = pipeline.expected_outputs(g, s)
    fw = firmware.build(bdir, bundle.report, targets.load("cortex-m4"), tmp_path / "ok",
                        samples=s, expected=exp)
    r = fw.run(timeout=60)
    assert r.status == "pass", r.describe()
    assert len(r.lines("SAMPLE")) == 3 and r.returncode == 0
    bad = [[o.copy() for o in e] for e in exp]
    bad[1][0].flat[3] = np.int8(bad[1][0].flat[3] ^ 1)
    fw = firmware.build(bdir, bundle.report, targets.load("cortex-m4"), tmp_path / "bad",
                        samples=s, expected=bad)
    r = fw.run(timeout=60)
    assert r.status == "mismatch" and r.returncode == 1 and not r.ok
    assert "MISMATCH" in r.lines("SAMPLE")[1]


def test_fault_is_reported_as_fault(tmp_path):
    need_arm()
    fw = _kws_firmware(tmp_path, defines=["EDGEC_FW_INJECT_FAULT"])
    r = fw.run(timeout=60)
    assert r.status == "fault" and not r.ok
    assert r.returncode == 3
    assert "HardFault" in r.describe() and "pc=0x" in r.describe()


def test_hang_is_reported_as_timeout(tmp_path):
    need_arm()
    fw = _kws_firmware(tmp_path, defines=["EDGEC_FW_INJECT_HANG"])
    r = fw.run(timeout=3)
    assert r.status == "timeout" and not r.ok
    assert "hang" in r.describe()


def test_stack_overflow_is_an_error(tmp_path):
    need_arm()
    from edgec.target import firmware, targets
    from edgec import pipeline
    from edgec.pipeline import Options, compile_full, load
    from edgec.data import random_samples
    g0 = load(EXAMPLE_KWS)
    bundle, g = compile_full(g0, Options(target="cortex-m4", name="kws"))
    s = random_samples(g0, 1)
    fw = firmware.build(bundle.write(tmp_path / "b"), bundle.report, targets.load("cortex-m4"),
                        tmp_path / "fw", samples=s, expected=pipeline.expected_outputs(g, s),
                        stack_size=128)
    r = fw.run(timeout=60)
    assert not r.ok and r.status in ("error", "fault", "timeout", "crash"), r.describe()
    if r.status == "error":
        assert "OVERFLOW" in r.stdout


@pytest.mark.parametrize("target", ["cortex-m4", "riscv32"])
def test_lto_firmware_passes(target, tmp_path):
    """Symbols the startup assembly calls survive link-time optimization."""
    need("arm-none-eabi-gcc" if target != "riscv32" else "riscv64-unknown-elf-gcc")
    from edgec.target import firmware, targets
    from edgec import pipeline
    from edgec.pipeline import Options, compile_full, load
    from edgec.data import random_samples
    g0 = load(EXAMPLE_KWS)
    bundle, g = compile_full(g0, Options(target=target, name="kws", lto=True))
    s = random_samples(g0, 1)
    fw = firmware.build(bundle.write(tmp_path / "b"), bundle.report, targets.load(target),
                        tmp_path / "fw", samples=s, expected=pipeline.expected_outputs(g, s),
                        lto=True, opt_level="2")
    r = fw.run(timeout=60)
    assert r.ok, r.describe()


def test_riscv_trap_is_reported_as_fault(tmp_path):
    need("riscv64-unknown-elf-gcc", "qemu-system-riscv32")
    fw = _kws_firmware(tmp_path, target="riscv32", defines=["EDGEC_FW_INJECT_FAULT"], samples=1)
    r = fw.run(timeout=60)
    assert r.status == "fault" and r.returncode == 3
    assert "trap mcause=0x00000003" in r.describe()  # __builtin_trap is ebreak: breakpoint


def test_verify_reports_a_timeout_as_failure(edgec_cli):
    need_arm()
    r = edgec_cli("verify", EXAMPLE_KWS, "--target", "cortex-m4", "-n", "1",
                  env={"EDGEC_QEMU_TIMEOUT": "0.01"})
    assert r.returncode == 1, r.stdout + r.stderr
    assert "hang" in r.stderr and "PASS" not in r.stdout


def test_verify_without_emulator_is_a_clear_error(edgec_cli):
    r = edgec_cli("verify", EXAMPLE_KWS, "--target", "cortex-m0plus", "-n", "1")
    assert r.returncode == 2
    assert "no emulator" in r.stderr


def test_bench_counts_are_repeatable(edgec_cli):
    need_arm()
    r = edgec_cli("bench", EXAMPLE_KWS, "--target", "cortex-m4", "--runs", "2", "--json")
    assert r.returncode == 0, r.stderr
    a = json.loads(r.stdout)
    r2 = edgec_cli("bench", EXAMPLE_KWS, "--target", "cortex-m4", "--runs", "1", "--json",
                   "--no-layers")
    b = json.loads(r2.stdout)
    assert a["repeatable"] and a["runs"] == 2
    assert a["instructions_per_inference"] == b["instructions_per_inference"] > 1_000_000
    assert a["instructions_per_inference"] % 40 == 0  # whole SysTick ticks on mps2 (25 MHz)
    assert a["macs"] == 2_664_768
    assert abs(a["macs_per_instruction"] - a["macs"] / a["instructions_per_inference"]) < 1e-3
    assert len(a["layers"]) == 12
    layer_sum = sum(L["instructions"] for L in a["layers"])
    assert abs(layer_sum - a["instructions_per_inference"]) < 0.01 * a["instructions_per_inference"]
    f, m = a["flash"], a["ram"]
    # int8 weights (27,248 B) re-laid out for the DSP kernels, with requantization tables
    assert 27_248 <= f["weights"] < 40_000 and 0 < f["model_code"] < f["code"] < 20_000
    # in-place depthwise and 1x1 layers: below the 16,000 B lifetime bound of separate buffers
    assert 8_000 < m["arena"] < 16_000 and 0 < m["stack_used"] < m["stack_reserved"]
    assert b["flash"] == f


def test_bench_table(edgec_cli):
    need_arm()
    r = edgec_cli("bench", EXAMPLE_KWS, "--runs", "1")
    assert r.returncode == 0, r.stderr
    assert "instructions / inference" in r.stdout and "MACs / instruction" in r.stdout
    assert "Softmax" in r.stdout and "arena " in r.stdout


def test_build_firmware_bundle_make_run(edgec_cli, tmp_path):
    """`edgec build --firmware`, then the bundle's own Makefile links and runs it."""
    need_arm()
    out = tmp_path / "b"
    r = edgec_cli("build", EXAMPLE_KWS, "--target", "cortex-m4", "--firmware", "--name", "kws",
                  "--test-samples", "3", "-o", out)
    assert r.returncode == 0, r.stderr
    for f in ("main.c", "startup.c", "link.ld", "edgec_fw.h", "test_vectors.c", "test_vectors.h"):
        assert (out / "firmware" / f).is_file(), f
    r = subprocess.run(["make", "-C", str(out), "run", "CFLAGS=$(EDGEC_CFLAGS) -Wall -Wextra -Werror"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "EDGEC-RESULT PASS samples=3" in r.stdout
    from edgec.target import elfsize
    b = elfsize.breakdown(elfsize.read(out / "firmware.elf"), "kws")
    rep = json.loads((out / "report.json").read_text())
    assert b["flash"]["weights"] == rep["weights_bytes"] and b["ram"]["arena"] == rep["arena_bytes"]


def test_build_firmware_is_deterministic(edgec_cli, tmp_path):
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        r = edgec_cli("build", EXAMPLE_KWS, "--firmware", "-o", out, env={"PYTHONHASHSEED": seed})
        assert r.returncode == 0, r.stderr
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert any(str(f).startswith("firmware/") for f in files)
    for f in files:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f


def test_firmware_for_host_is_refused(edgec_cli, tmp_path):
    r = edgec_cli("build", EXAMPLE_KWS, "--target", "host", "--firmware", "-o", tmp_path / "b")
    assert r.returncode == 2 and "microcontroller" in r.stderr


def test_cortex_m0plus_size_only_build(tmp_path):
    need("arm-none-eabi-gcc")
    _size_only(EXAMPLE_KWS, tmp_path)


def _size_only(model, tmp_path):
    from edgec.target import elfsize, firmware, targets
    from edgec import pipeline
    from edgec.pipeline import Options, compile_full, load
    from edgec.data import random_samples
    tgt = targets.load("cortex-m0plus")
    g0 = load(model)
    bundle, g = compile_full(g0, Options(target="cortex-m0plus", name="model", fit_check=False))
    bdir = bundle.write(tmp_path / "bundle")
    s = random_samples(g0, 1)
    fw = firmware.build(bdir, bundle.report, tgt, tmp_path / "fw", samples=s,
                        expected=pipeline.expected_outputs(g, s), memory="unbounded")
    b = elfsize.breakdown(elfsize.read(fw.elf), "model")
    # gcc may fold a tiny constant array into the code (VWW's 2-element FC bias)
    assert 0.99 * bundle.report["weights_bytes"] <= b["flash"]["weights"] <= bundle.report["weights_bytes"]
    assert b["ram"]["arena"] == bundle.report["arena_bytes"]
    assert 0 < b["flash"]["model_code"] < b["flash"]["code"]
    return b


def test_example_project_make_run(tmp_path):
    """firmware_examples/kws: its Makefile calls edgec, the cross compiler, then QEMU."""
    need_arm()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(["make", "-C", str(ROOT / "firmware_examples" / "kws"), "run",
                        f"EDGEC={sys.executable} -m edgec", f"BUILD={tmp_path / 'build'}"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "kws: all 4 test inputs classified as expected" in r.stdout


# ---- all models, all targets (slow) -------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"])
@pytest.mark.parametrize("name", INT8)
def test_mlperf_int8_bit_exact_in_qemu(name, target):
    need_arm()
    from edgec.commands.verify import verify
    res = verify(shared_model(f"mlperf_tiny/{name}"), target=target, n=10, layers=True, seed=11,
                 compare_litert=False)
    _bit_exact(res, 10)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55", "cortex-m3"])
@pytest.mark.parametrize("name", INT8)
def test_mlperf_int8_optimize_size_bit_exact_in_qemu(name, target):
    """--optimize size: shared kernels (DSP / Helium ones on m4 / m55, generic ones on m3)."""
    need_arm()
    from edgec.commands.verify import verify
    res = verify(shared_model(f"mlperf_tiny/{name}"), target=emulated_part(target), n=4, layers=True,
                 seed=12, compare_litert=False, optimize="size")
    _bit_exact(res, 10)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m3"])
@pytest.mark.parametrize("name", FLOAT)
def test_mlperf_float_within_tolerance_in_qemu(name, target):
    need_arm()
    from edgec.commands.verify import verify
    res = verify(shared_model(f"mlperf_tiny/{name}"), target=emulated_part(target), n=5, layers=True,
                 rtol=1e-4)
    assert res.outputs and len(res.layers) >= 10
    for c in res.outputs + res.layers:
        assert c.ok, c.line()


@pytest.mark.slow
@pytest.mark.parametrize("name", INT8)
def test_mlperf_int8_bit_exact_on_riscv32(name):
    need("riscv64-unknown-elf-gcc", "qemu-system-riscv32")
    from edgec.commands.verify import verify
    res = verify(shared_model(f"mlperf_tiny/{name}"), target="riscv32", n=3, layers=True,
                 compare_litert=False)
    _bit_exact(res, 10)


@pytest.mark.slow
@pytest.mark.parametrize("name", INT8)
def test_mlperf_int8_size_only_cortex_m0plus(name, tmp_path):
    need("arm-none-eabi-gcc")
    b = _size_only(shared_model(f"mlperf_tiny/{name}"), tmp_path)
    assert b["flash"]["code"] < 16_000


@pytest.mark.slow
def test_bench_mlperf_ad_repeatable_and_scales():
    need_arm()
    from edgec.commands.bench import bench
    r = bench(shared_model("mlperf_tiny/ad01_int8.tflite"), "cortex-m4", n=2, runs=3)
    assert r.repeatable and r.runs == 3
    assert r.instructions > 0 and r.macs == sum(L["macs"] for L in r.layers)


def test_user_target_file_with_pl011_board(tmp_path):
    """A board of the user's own: QEMU's lm3s6965evb (Cortex-M3, PL011 UART, 256K/64K)."""
    need_arm()
    t = tmp_path / "lm3s.toml"
    t.write_text('''name = "lm3s6965"
arch = "arm"
cc = "arm-none-eabi-gcc"
cflags = ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"]
ldflags = ["--specs=nano.specs"]
[memory]
flash = "256K"
ram = "64K"
[qemu]
binary = "qemu-system-arm"
machine = "lm3s6965evb"
flash_origin = 0x00000000
flash_size = "256K"
ram_origin = 0x20000000
ram_size = "64K"
uart = "pl011"
uart_base = 0x4000C000
cpu_hz = 12000000
''')
    from edgec.commands.verify import verify
    res = verify(EXAMPLE_KWS, target=str(t), n=2, compare_litert=False)
    assert res.ok and res.extra["firmware"]["machine"] == "lm3s6965evb"
