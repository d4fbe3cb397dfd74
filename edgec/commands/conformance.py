"""``edgec conformance``: the ONNX backend node tests as edgec's conformance suite.

The onnx package carries its node tests as code
(``onnx.backend.test.case.node.collect_testcases``): each case has a model, the
input and output arrays and tolerances.  For every case edgec imports the model
with its ONNX frontend, compiles it for the host with the native backend, builds
the C with ``gcc -std=c99 -Wall -Wextra -Werror``, runs it on the shipped inputs
and compares with the shipped outputs (``np.testing.assert_allclose`` with the
case's ``rtol``/``atol``, same dtype and shape, as the ONNX runner does).

Outcomes:

* ``pass``: the outputs match;
* ``skip``: edgec refused the model with a clean :class:`UnsupportedError`
  (operator, attribute or element type it does not compile);
* ``fail``: anything else: a wrong answer, a compiler warning or error, a crash
  or hang of the compiled code, an :class:`EdgecError` on a valid model, or any
  other exception in edgec.

To keep the run short, cases are compiled in batches: every case becomes its own
bundle with a distinct prefix (one translation unit each, compiled strictly), and
all bundles of a batch link into one driver executable that runs the cases in
order and reports progress, so a crash or hang is pinned on its case and the
rest of the batch runs on.
"""
from __future__ import annotations

import fnmatch
import functools
import multiprocessing
import os
import re
import shutil
import subprocess
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..ir import dtypes, progress as progress_bar
from ..ir.errors import EdgecError, UnsupportedError

SKIPS_FILE = Path(__file__).resolve().parents[2] / "tests" / "conformance_skips.txt"

# Per-test tolerance overrides, each with its reason (onnxruntime keeps a list
# like this for its run of the same tests).  Only for shipped outputs whose own
# rounding noise exceeds the case's atol; the result records the override.
TOLERANCE_OVERRIDES = {
    name: (1e-3, 1e-6, "the shipped output carries numpy's float32 FFT rounding (1.9e-7 where "
           "the exact value is 0); edgec's double-precision sum gives ~1e-15")
    for name in ("test_dft_inverse", "test_dft_inverse_opset19")
}
TOTAL_ONNX_1_23 = 1884


@dataclass
class CaseResult:
    name: str
    status: str            # "pass" | "skip" | "fail"
    reason: str = ""
    ops: list[str] = field(default_factory=list)
    # graph inputs bound to the test's values as compile-time constants
    bound: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "reason": self.reason, "ops": self.ops,
                "bound": self.bound}


@dataclass
class Report:
    results: list[CaseResult]
    seconds: float
    onnx_version: str

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def passed(self) -> int:
        return self.count("pass")

    @property
    def skipped(self) -> int:
        return self.count("skip")

    @property
    def failed(self) -> int:
        return self.count("fail")

    @property
    def passed_bound(self) -> int:
        return sum(r.status == "pass" and bool(r.bound) for r in self.results)

    def summary(self) -> str:
        nb = self.passed_bound
        return (f"{len(self.results)} ONNX node tests (onnx {self.onnx_version}): "
                f"{self.passed} passed"
                + (f" ({nb} with parameter inputs bound as constants)" if nb else "")
                + f", {self.skipped} skipped, {self.failed} failed in {self.seconds:.0f} s")

    def to_json(self) -> dict:
        return {"onnx_version": self.onnx_version, "total": len(self.results),
                "passed": self.passed, "passed_with_bound_inputs": self.passed_bound,
                "skipped": self.skipped, "failed": self.failed,
                "seconds": round(self.seconds, 1),
                "results": [r.to_json() for r in self.results]}


# --- test cases ------------------------------------------------------------------

_CASES: list = []


@functools.lru_cache(maxsize=1)
def _all_cases() -> tuple:
    import warnings

    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return tuple(collect_testcases(None))


def collect(patterns=(), exclude=()) -> list:
    """The onnx node test cases whose names match any of ``patterns`` (regular
    expressions searched in the name, or shell globs) and none of ``exclude``."""
    cases = [c for c in _all_cases() if _matches(c.name, patterns, True)
             and not _matches(c.name, exclude, False)]
    return sorted(cases, key=lambda c: c.name)


def _matches(name: str, patterns, empty: bool) -> bool:
    if not patterns:
        return empty
    for p in patterns:
        if any(ch in p for ch in "*?[") and fnmatch.fnmatchcase(name, p):
            return True
        try:
            if re.search(p, name):
                return True
        except re.error:
            if p in name:
                return True
    return False


def load_expected_skips(path: Path = SKIPS_FILE) -> dict[str, str]:
    """``name<TAB>reason`` lines (``#`` comments) -> {name: reason}."""
    out = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition("\t")
        out[name.strip()] = reason.strip()
    return out


def write_expected_skips(report: Report, path: Path = SKIPS_FILE) -> None:
    lines = ["# ONNX node tests edgec skips (it reports them as unsupported), with the reason.",
             "# Regenerate with: python -m edgec conformance --write-skips",
             f"# onnx {report.onnx_version}: {report.passed} passed, {report.skipped} skipped, "
             f"{report.failed} failed"]
    for r in sorted(report.results, key=lambda r: r.name):
        if r.status == "skip":
            lines.append(f"{r.name}\t{r.reason}")
    path.write_text("\n".join(lines) + "\n")


# --- preparing a case ------------------------------------------------------------

@dataclass
class Prepared:
    index: int
    name: str
    prefix: str
    ops: list[str]
    files: dict[str, str]
    inputs: list[np.ndarray]
    expected: list[np.ndarray]
    out_specs: list[tuple[tuple, str]]
    rtol: float
    atol: float
    bound: list[str] = field(default_factory=list)


def _as_array(v):
    """A test-data value as a numpy array, or None when edgec cannot take it."""
    from onnx import TensorProto, numpy_helper
    if isinstance(v, TensorProto):
        try:
            v = numpy_helper.to_array(v)
        except Exception:  # noqa: BLE001
            return None
    if isinstance(v, np.generic):
        v = np.asarray(v)
    if not isinstance(v, np.ndarray):
        return None
    try:
        dtypes.from_numpy(v.dtype)
    except EdgecError:
        return None
    return v


def _unsupported_data(vals) -> str | None:
    from onnx import TensorProto
    for v in vals:
        if v is None:
            return "optional (absent) value"
        if isinstance(v, (list, tuple)):
            return "sequence value"
        if isinstance(v, dict):
            return "map value"
        if isinstance(v, TensorProto):
            from onnx import helper
            try:
                name = helper.tensor_dtype_to_np_dtype(v.data_type)
                name = np.dtype(name).name
            except Exception:  # noqa: BLE001
                name = str(v.data_type)
            a = _as_array(v)
            if a is None:
                return f"element type {name}"
            continue
        a = _as_array(v)
        if a is None:
            dt = getattr(v, "dtype", type(v).__name__)
            return f"element type {dt}"
    return None


def prepare(index: int, case, allow_bind: bool = True) -> Prepared | CaseResult:
    """Import and compile one case (Python side).  Returns a CaseResult when the
    case ends here (skip or fail).

    With ``allow_bind``, a graph input that edgec needs as a compile-time
    constant (a shape, axes, pads, weights...: it reports it in
    ``UnsupportedError.needs_const``) is bound to the test's value, as a
    deployed model would carry it as an initializer; the case's result records
    the bound inputs.  The other inputs stay inputs of the compiled C."""
    from ..pipeline import Options, compile_full
    from ..frontends import onnx as onnx_fe

    ops = sorted({n.op_type for n in case.model.graph.node}) if case.model is not None else []
    name = case.name
    if case.model is None or not case.data_sets:
        return CaseResult(name, "skip", "no model or no data in the onnx package", ops)
    ins, outs = case.data_sets[0]
    bad = _unsupported_data(list(ins) + list(outs))
    if bad:
        return CaseResult(name, "skip", f"unsupported: {bad} in the test data", ops)
    inputs = [_as_array(v) for v in ins]
    expected = [_as_array(v) for v in outs]
    prefix = f"c{index}"
    model = case.model
    init_names = {t.name for t in model.graph.initializer}
    real_inputs = [vi.name for vi in model.graph.input if vi.name not in init_names]
    if len(real_inputs) != len(inputs):
        return CaseResult(name, "fail", f"the model has {len(real_inputs)} inputs, "
                          f"the test data {len(inputs)}", ops)
    data = dict(zip(real_inputs, inputs))
    bind: dict[str, np.ndarray] = {}
    try:
        for _ in range(len(real_inputs) + 1):
            shapes = {k: tuple(int(d) for d in x.shape) for k, x in data.items() if k not in bind}
            try:
                g = onnx_fe.from_model(model, shapes, where=name, bind=bind)
                bundle, g2 = compile_full(g, Options(target="host", name=prefix))
                break
            except UnsupportedError as e:
                more = [t for t in e.needs_const if t in data and t not in bind]
                if not allow_bind or not more:
                    raise
                for t in more:
                    bind[t] = data[t]
        if len(g.outputs) != len(expected):
            raise EdgecError(f"the model has {len(g.outputs)} outputs, the test data {len(expected)}")
    except UnsupportedError as e:
        return CaseResult(name, "skip", _short(_strip(str(e), name)), ops)
    except EdgecError as e:
        return CaseResult(name, "fail", f"EdgecError: {_short(_strip(str(e), name))}", ops)
    except Exception as e:  # noqa: BLE001 - any other exception is an edgec bug
        tb = traceback.extract_tb(e.__traceback__)
        where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
        return CaseResult(name, "fail", f"{type(e).__name__}{where}: {_short(str(e))}", ops)
    inputs = [data[str(g.tensors[i].origin)] for i in g.inputs]
    specs = [(tuple(d["shape"]), d["dtype"]) for d in bundle.report["outputs"]]
    in_specs = [(tuple(d["shape"]), d["dtype"]) for d in bundle.report["inputs"]]
    for x, (shape, dt) in zip(inputs, in_specs):
        if tuple(x.shape) != shape or dtypes.from_numpy(x.dtype) != dt:
            return CaseResult(name, "fail", f"compiled input {dt}{list(shape)} does not match "
                              f"the test data {x.dtype}{list(x.shape)}", ops)
    files = {k: v for k, v in bundle.files.items() if k.endswith((".c", ".h"))}
    rtol, atol = float(case.rtol), float(case.atol)
    if name in TOLERANCE_OVERRIDES:
        rtol, atol, _ = TOLERANCE_OVERRIDES[name]
    return Prepared(index, name, prefix, ops, files, inputs, expected, specs,
                    rtol, atol, sorted(bind))


def _strip(msg: str, name: str) -> str:
    return msg[len(name) + 2:] if msg.startswith(name + ": ") else msg


def _short(msg: str, n: int = 300) -> str:
    msg = " ".join(msg.split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def compare(p: Prepared, got: list[np.ndarray]) -> CaseResult:
    for j, (exp, y) in enumerate(zip(p.expected, got)):
        if exp.dtype != y.dtype:
            return CaseResult(p.name, "fail", f"output {j}: dtype {y.dtype}, expected {exp.dtype}", p.ops, p.bound)
        if tuple(exp.shape) != tuple(y.shape):
            return CaseResult(p.name, "fail", f"output {j}: shape {list(y.shape)}, expected "
                              f"{list(exp.shape)}", p.ops, p.bound)
        try:
            np.testing.assert_allclose(y, exp, rtol=p.rtol, atol=p.atol, equal_nan=True)
        except AssertionError as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            detail = "; ".join(ln for ln in lines if ln.startswith(("Mismatched", "Max")))
            return CaseResult(p.name, "fail", f"output {j} differs: {detail}", p.ops, p.bound)
    note = f"atol {p.atol:g} (override: {TOLERANCE_OVERRIDES[p.name][2]})" \
        if p.name in TOLERANCE_OVERRIDES else ""
    return CaseResult(p.name, "pass", note, p.ops, p.bound)


# --- building and running a batch ------------------------------------------------

DRIVER = r"""/* edgec conformance driver: runs the cases of one batch. Generated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*invoke_fn)(const void* const* inputs, void* const* outputs);
%(decls)s
static const invoke_fn fns[%(n)d] = { %(fns)s };
static const int n_in[%(n)d] = { %(nin)s };
static const int n_out[%(n)d] = { %(nout)s };
static const unsigned long in_bytes[%(nib)d] = { %(ib)s };
static const unsigned long out_bytes[%(nob)d] = { %(ob)s };

int main(int argc, char** argv)
{
  FILE* fin;
  FILE* fout;
  int first, c, i, ii = 0, oi = 0;
  if (argc < 4) return 2;
  fin = fopen(argv[1], "rb");
  fout = fopen(argv[2], "wb");
  first = atoi(argv[3]);
  if (!fin || !fout) return 2;
  for (c = 0; c < %(n)d; ++c) {
    void* ins[%(maxio)d];
    void* outs[%(maxio)d];
    int rc;
    for (i = 0; i < n_in[c]; ++i) {
      ins[i] = malloc(in_bytes[ii + i] ? in_bytes[ii + i] : 1);
      if (fread(ins[i], 1, in_bytes[ii + i], fin) != in_bytes[ii + i]) return 3;
    }
    for (i = 0; i < n_out[c]; ++i) {
      outs[i] = malloc(out_bytes[oi + i] ? out_bytes[oi + i] : 1);
      memset(outs[i], 0xA5, out_bytes[oi + i]);
    }
    if (c >= first) {
      printf("start %%d\n", c);
      fflush(stdout);
      rc = fns[c]((const void* const*)ins, outs);
      for (i = 0; i < n_out[c]; ++i) fwrite(outs[i], 1, out_bytes[oi + i], fout);
      fflush(fout);
      printf("done %%d %%d\n", c, rc);
      fflush(stdout);
    }
    for (i = 0; i < n_in[c]; ++i) free(ins[i]);
    for (i = 0; i < n_out[c]; ++i) free(outs[i]);
    ii += n_in[c];
    oi += n_out[c];
  }
  fclose(fin);
  fclose(fout);
  return 0;
}
"""


def _gcc(args, cwd, timeout=300):
    return subprocess.run(["gcc", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def run_batch(items: list[Prepared], work: Path, opt_level: str = "1",
              timeout: float = 60.0, sanitize: bool = False, cross=()) -> list[CaseResult]:
    """Compile the prepared cases of one batch, link them into one driver, run it.
    ``cross``: target names whose compiler must also take every case's C without
    a warning (compiled, not run)."""
    from ..target import targets, toolchain
    from ..target.toolchain import STRICT
    cross_cmds = []
    for tname in cross:
        t = targets.load(tname)
        cross_cmds.append((toolchain.cc(t), [*STRICT, *t.cflags, f"-O{opt_level}"]))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, CaseResult] = {}
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"] if sanitize else []
    objs = []
    ok_items = []
    for p in items:
        d = work / p.prefix
        d.mkdir(exist_ok=True)
        for fname, text in p.files.items():
            (d / fname).write_text(text)
        r = _gcc([*STRICT, f"-O{opt_level}", *san, "-c", f"{p.prefix}.c", "-o", f"{p.prefix}.o"], d)
        if r.returncode != 0:
            msg = [ln for ln in (r.stderr or r.stdout).splitlines() if "error" in ln or "warning" in ln]
            results[p.name] = CaseResult(p.name, "fail", "gcc: " + _short(" | ".join(msg[:3]) or r.stderr),
                                         p.ops, p.bound)
            continue
        bad = None
        for cc, flags in cross_cmds:
            r = subprocess.run([cc, *flags, "-c", f"{p.prefix}.c", "-o", os.devnull], cwd=d,
                               capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                msg = [ln for ln in r.stderr.splitlines() if "error" in ln or "warning" in ln]
                bad = f"{Path(cc).name}: " + _short(" | ".join(msg[:3]) or r.stderr)
                break
        if bad:
            results[p.name] = CaseResult(p.name, "fail", bad, p.ops, p.bound)
            continue
        objs.append(str(d / f"{p.prefix}.o"))
        ok_items.append(p)
    if ok_items:
        n = len(ok_items)
        decls = "\n".join(f"int {p.prefix}_invoke_generic(const void* const* inputs, "
                          f"void* const* outputs);" for p in ok_items)
        ib = [x.nbytes for p in ok_items for x in p.inputs]
        ob = [int(np.prod(s)) * dtypes.itemsize(dt) for p in ok_items for s, dt in p.out_specs]
        src = DRIVER % dict(
            decls=decls, n=n,
            maxio=max([1] + [len(p.inputs) for p in ok_items] + [len(p.out_specs) for p in ok_items]), fns=", ".join(f"{p.prefix}_invoke_generic" for p in ok_items),
            nin=", ".join(str(len(p.inputs)) for p in ok_items),
            nout=", ".join(str(len(p.out_specs)) for p in ok_items),
            nib=max(len(ib), 1), ib=", ".join(f"{b}ul" for b in ib) or "0",
            nob=max(len(ob), 1), ob=", ".join(f"{b}ul" for b in ob) or "0")
        (work / "driver.c").write_text(src)
        exe = work / "driver"
        r = _gcc(["-std=c99", f"-O{opt_level}", *san, "driver.c", *objs, "-lm", "-o", str(exe)], work)
        if r.returncode != 0:
            for p in ok_items:
                results[p.name] = CaseResult(p.name, "fail", "link: " + _short(r.stderr), p.ops, p.bound)
            ok_items = []
    if ok_items:
        with open(work / "inputs.bin", "wb") as f:
            for p in ok_items:
                for x in p.inputs:
                    f.write(np.ascontiguousarray(x).tobytes())
        first = 0
        while first < len(ok_items):
            outf = work / f"outputs_{first}.bin"
            crashed = None
            try:
                r = subprocess.run([str(work / "driver"), str(work / "inputs.bin"), str(outf), str(first)],
                                   capture_output=True, text=True, timeout=timeout)
                stdout, rc, hung = r.stdout, r.returncode, False
                err = r.stderr
            except subprocess.TimeoutExpired as e:
                stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
                rc, hung, err = -1, True, ""
            data = outf.read_bytes() if outf.exists() else b""
            pos = 0
            done_upto = first
            for line in stdout.splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[0] == "done":
                    c, code = int(parts[1]), int(parts[2])
                    p = ok_items[c]
                    got = []
                    for shape, dt in p.out_specs:
                        nb = int(np.prod(shape)) * dtypes.itemsize(dt)
                        got.append(np.frombuffer(data[pos:pos + nb], dtype=dtypes.np_dtype(dt))
                                   .reshape(shape).copy())
                        pos += nb
                    if code != 0:
                        results[p.name] = CaseResult(p.name, "fail", f"invoke returned {code}", p.ops, p.bound)
                    else:
                        results[p.name] = compare(p, got)
                    done_upto = c + 1
                elif len(parts) == 2 and parts[0] == "start":
                    crashed = int(parts[1])
            if done_upto >= len(ok_items) and not hung:
                break
            # the case that started and never finished crashed or hung
            c = crashed if crashed is not None and crashed >= done_upto else done_upto
            p = ok_items[c]
            what = "hung (timeout)" if hung else f"crashed (exit {rc})"
            tail = " | ".join(err.strip().splitlines()[-3:]) if err else ""
            results[p.name] = CaseResult(p.name, "fail", f"the compiled model {what}"
                                         + (f": {_short(tail, 200)}" if tail else ""), p.ops, p.bound)
            first = c + 1
    return [results[p.name] for p in items]


# --- the whole run ----------------------------------------------------------------

def _work_batch(args):
    indices, work, opt_level, sanitize, allow_bind, cross = args
    out = []
    prepared = []
    for i in indices:
        r = prepare(i, _CASES[i], allow_bind)
        if isinstance(r, CaseResult):
            out.append(r)
        else:
            prepared.append(r)
    if prepared:
        try:
            out += run_batch(prepared, Path(work), opt_level, sanitize=sanitize, cross=cross)
        except Exception as e:  # noqa: BLE001
            out += [CaseResult(p.name, "fail", f"batch error: {type(e).__name__}: {e}", p.ops, p.bound)
                    for p in prepared]
    if os.environ.get("EDGEC_CONFORMANCE_KEEP") is None:
        shutil.rmtree(work, ignore_errors=True)
    return out


def run(patterns=(), exclude=(), jobs: int | None = None, batch_size: int = 48,
        work_dir: str | None = None, opt_level: str = "1", sanitize: bool = False,
        bind: bool = True, cross=()) -> Report:
    import onnx
    global _CASES
    t0 = time.time()
    cases = collect(patterns, exclude)
    _CASES = cases
    if jobs is None:
        jobs = min(2, os.cpu_count() or 1)
    tmp = None
    if work_dir is None:
        tmp = tempfile.mkdtemp(prefix="edgec-conformance-")
        base = Path(tmp)
    else:
        base = Path(work_dir)
        base.mkdir(parents=True, exist_ok=True)
    # interleave so batches mix cheap and expensive cases
    order = list(range(len(cases)))
    batches = [order[i::max(1, -(-len(order) // batch_size))] for i in range(
        max(1, -(-len(order) // batch_size)))] if order else []
    tasks = [(b, str(base / f"batch{k}"), opt_level, sanitize, bind, tuple(cross))
             for k, b in enumerate(batches)]
    results: list[CaseResult] = []
    try:
        with progress_bar.task("ONNX node tests", len(cases)) as bar:
            if jobs > 1 and len(tasks) > 1:
                ctx = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(jobs, mp_context=ctx) as ex:
                    for res in ex.map(_work_batch, tasks):
                        results += res
                        bar.advance(len(res), f"{sum(r.status == 'fail' for r in results)} failing")
            else:
                for t in tasks:
                    res = _work_batch(t)
                    results += res
                    bar.advance(len(res), f"{sum(r.status == 'fail' for r in results)} failing")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    results.sort(key=lambda r: r.name)
    return Report(results, time.time() - t0, onnx.__version__)
