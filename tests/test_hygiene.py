"""Generated C hygiene: every test model's bundle compiles warning-free with
``-std=c99 -Wall -Wextra -Werror`` plus -Wconversion and friends (EXTRA_WARNINGS)
on the host gcc, arm-none-eabi-gcc (Cortex-M0+ soft float, Cortex-M4F, Cortex-M55)
and riscv64-unknown-elf-gcc; the model objects reference no allocator and no
stdio, and hold no writable global state but the arena; the test models run clean
under AddressSanitizer and UBSan on the host."""
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import EXAMPLE_KWS, MLPERF, ROOT, ONNX_MODELS
from edgec.target import targets
from edgec.pipeline import Options, compile_full
from edgec.fuzz.runner import EXTRA_WARNINGS
from edgec.target.toolchain import STRICT


def _models():
    ms = [EXAMPLE_KWS]
    ms += sorted(MLPERF.glob("*.tflite"))
    ms += [ONNX_MODELS / "mnist-8.onnx"]
    ms += sorted(p for p in (ROOT / "tests" / "fuzz_regressions").glob("*") if p.suffix in (".onnx", ".tflite"))
    return list({m.name: m for m in ms}.values())


MODELS = _models()
# Symbols model code must never reference: allocation, stdio, process control.
FORBIDDEN = {"malloc", "calloc", "realloc", "free", "aligned_alloc", "posix_memalign", "memalign",
             "valloc", "alloca", "sbrk", "_sbrk", "printf", "fprintf", "sprintf", "snprintf", "puts",
             "putchar", "fputs", "fopen", "fclose", "fwrite", "fread", "exit", "abort", "__assert_fail",
             "_malloc_r", "_free_r", "_calloc_r", "_realloc_r"}
CROSS_TARGETS = ["cortex-m0plus", "cortex-m4", "cortex-m55", "riscv32"]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    base = tmp_path_factory.mktemp("hygiene")
    out = {}
    for m in MODELS:
        b, _ = compile_full(m, Options(target="host", name="model"))
        out[m.name] = b.write(base / m.name.replace(".", "_"))
    return out


def _compile(cc: str, flags, bundle: Path, obj: Path):
    r = subprocess.run([cc, *STRICT, *EXTRA_WARNINGS, *flags, "-c", str(bundle / "model.c"),
                        "-o", str(obj)], capture_output=True, text=True)
    assert r.returncode == 0, f"{cc} {bundle.name}:\n{r.stderr[:2000]}"
    return obj


def _symbols(nm: str, obj: Path):
    r = subprocess.run([nm, str(obj)], capture_output=True, text=True, check=True)
    syms = []
    for line in r.stdout.splitlines():
        parts = line.split()
        syms.append((parts[-2], parts[-1]) if len(parts) >= 2 else ("?", parts[0]))
    return syms


def _check_symbols(nm: str, obj: Path, where: str):
    syms = _symbols(nm, obj)
    undefined = {s for t, s in syms if t == "U"}
    assert not undefined & FORBIDDEN, f"{where}: references {sorted(undefined & FORBIDDEN)}"
    # writable globals (data/bss, local or not): only the arena
    writable = [s for t, s in syms if t in "bBdD" and not s.startswith(".")]
    assert all("arena" in s for s in writable), f"{where}: writable globals {writable}"


@pytest.mark.parametrize("model", [m.name for m in MODELS])
def test_host_gcc_extra_warnings_no_malloc(bundles, model, tmp_path):
    for opt in ("-O0", "-O2"):
        obj = _compile("gcc", [opt], bundles[model], tmp_path / f"m{opt}.o")
    _check_symbols("nm", obj, model)


@pytest.mark.parametrize("target", CROSS_TARGETS)
@pytest.mark.parametrize("optimize", ["speed", "size"])
def test_cross_compilers(bundles, target, optimize, tmp_path):
    """The host bundles, and bundles built for the target itself (its DSP / Helium
    kernels with their inline assembly), with the target's compiler."""
    t = targets.load(target)
    if not shutil.which(t.cc):
        pytest.skip(f"{t.cc} not installed")
    nm = t.cc[: -len("gcc")] + "nm"
    for model, d in bundles.items():
        if optimize == "speed":
            obj = _compile(t.cc, [*t.cflags, "-Os"], d, tmp_path / f"{d.name}.o")
            _check_symbols(nm, obj, f"{model} (host bundle) on {target}")
    for m in MODELS:
        b, _ = compile_full(m, Options(target=target, name="model", optimize=optimize, fit_check=False))
        d = b.write(tmp_path / f"{m.stem}_{target}")
        for opt in (("-Os", "-O2") if target == "cortex-m4" else ("-Os",)):
            obj = _compile(t.cc, [*t.cflags, opt], d, tmp_path / f"{m.stem}{opt}.o")
        _check_symbols(nm, obj, f"{m.name} ({target} bundle, {optimize}) on {target}")


@pytest.mark.parametrize("model", [EXAMPLE_KWS, ONNX_MODELS / "mnist-8.onnx",
                                   MLPERF / "ad01_fp32.tflite"], ids=lambda p: p.name)
def test_sanitizers(model):
    """Host runs under -fsanitize=address,undefined (fatal on the first report),
    every intermediate tensor compared with the reference."""
    from edgec.commands.verify import verify
    res = verify(model, n=3, layers=True, sanitize=True, compare_litert=False)
    assert res.ok, [c.line() for c in res.outputs + res.layers if not c.ok]


def test_symbol_check_catches_malloc_and_globals(tmp_path):
    src = tmp_path / "bad.c"
    src.write_text("#include <stdlib.h>\nint counter;\nvoid* f(void);\nvoid* f(void) "
                   "{ ++counter; return malloc(4); }\n")
    obj = tmp_path / "bad.o"
    subprocess.run(["gcc", "-c", str(src), "-o", str(obj)], check=True)
    with pytest.raises(AssertionError, match="malloc"):
        _check_symbols("nm", obj, "bad")
    src.write_text("int counter;\nint f(void);\nint f(void) { return ++counter; }\n")
    subprocess.run(["gcc", "-c", str(src), "-o", str(obj)], check=True)
    with pytest.raises(AssertionError, match="writable globals"):
        _check_symbols("nm", obj, "bad")


def test_softmax_long_rows_no_undefined_shift(tmp_path):
    """int8 softmax over rows of 512+ near-equal values divides by 2^32 or more: the C
    must not shift an int32 by 32 (UBSan fatal here) and must match edgec's reference
    (TFLite Micro's own reference aborts on such rows, so there is nothing else to
    compare with)."""
    import numpy as np

    from edgec.ops import interp
    from edgec.target.emulator import HostProgram
    from edgec.ir.graph import Graph, QuantParams
    g = Graph("softmax_rows")
    g.add_tensor("x", (3, 1200), "int8", quant=QuantParams([0.05], [0]))
    g.inputs = ["x"]
    g.add_node("Softmax", ["x"], ["y"], {"axis": -1, "beta": 1.0})
    g.tensors["y"].quant = QuantParams([1 / 256], [-128])
    g.outputs = ["y"]
    b, g2 = compile_full(g, Options(target="host", name="model"))
    prog = HostProgram(b.write(tmp_path / "b"), b.report, tmp_path / "w", sanitize=True)
    rng = np.random.default_rng(0)
    samples = [[np.zeros((3, 1200), np.int8)], [np.full((3, 1200), 127, np.int8)],
               [rng.integers(-3, 3, (3, 1200)).astype(np.int8)]]
    outs, _ = prog.run(samples)
    for s, o in zip(samples, outs):
        assert np.array_equal(o[0], interp.run(g2, s)[g2.outputs[0]])
