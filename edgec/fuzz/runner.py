"""Differential fuzzing: random graphs, compiled by edgec and run on the host,
compared with the reference runtimes.

* ``onnx`` cases: random float ONNX graphs (:mod:`.gen_onnx`) through edgec's ONNX
  frontend, compared with onnxruntime (graph optimizations off) within
  ``|got - ref| <= RTOL * max|ref| + ATOL`` per output (integer and boolean
  outputs exactly);
* ``int8`` cases: random int8 graphs (:mod:`.gen_int8`) written as TFLite
  flatbuffers by :mod:`edgec.exporters.tflite`, read back by edgec's TFLite
  frontend, compared with the TFLite Micro interpreter **bit for bit**.

Each graph gets its own random generator seeded with ``(seed, kind, index)``, so
``--seed S --index I`` reproduces one case exactly.  Graphs are compiled in
batches: every case becomes its own bundle (prefix ``c<i>``, one translation
unit compiled with ``-std=c99 -Wall -Wextra -Werror``, optionally with
AddressSanitizer/UBSan and a cross-compile with arm-none-eabi-gcc), and all
bundles of a batch link into one driver program that runs them in turn, so a
crash is pinned on its case.  The reference runtimes run in a separate worker
process (the TFLite Micro interpreter segfaults on some malformed models).

A failing case (wrong values, an edgec error on a valid graph, a C warning, a
crash) is shrunk (:mod:`.shrink`) and saved with its inputs as a regression test
(``tests/fuzz_regressions/``).
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import tempfile
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError, UnsupportedError

RTOL = 1e-4
ATOL = 1e-5
SAMPLES = 2
KINDS = ("onnx", "int8")
_KIND_ID = {"onnx": 1, "int8": 2}
# Compile variants a case is built with (Options.optimize, Options.kernels): per-layer
# kernels or shared run-time-parameter kernels (size); int8 also with the Arm DSP and
# Helium kernels in their portable C form, so the host checks them against TFLite Micro.
VARIANTS = {"onnx": [("speed", "auto"), ("size", "auto")],
            "int8": [("speed", "auto"), ("size", "auto"), ("speed", "dsp"), ("size", "dsp"),
                     ("speed", "mve"), ("size", "mve")]}


@dataclass
class Case:
    kind: str
    seed: int
    index: int
    model: bytes = b""
    samples: list = field(default_factory=list)    # [[input arrays] per sample]
    ops: list = field(default_factory=list)
    graph: object = None                            # int8: the IR graph (for shrinking)
    proto: object = None                            # onnx: the ModelProto (for shrinking)
    float_ranges: dict = field(default_factory=dict)
    # how edgec compiles it: (optimize, kernels), see VARIANTS
    variant: tuple = ("speed", "auto")

    @property
    def name(self) -> str:
        return f"{self.kind}-s{self.seed}-i{self.index}"

    @property
    def suffix(self) -> str:
        return ".onnx" if self.kind == "onnx" else ".tflite"


@dataclass
class Outcome:
    case: Case
    status: str        # ok | mismatch | edgec-error | c-error | crash | ref-error | gen-error
    detail: str = ""

    @property
    def failed(self) -> bool:
        """A bug in edgec (ref-error and gen-error are the generator's or the reference's)."""
        return self.status in ("mismatch", "edgec-error", "c-error", "crash")


# --- making cases ----------------------------------------------------------------------

def make_case(kind: str, seed: int, index: int, max_nodes: int | None = None) -> Case:
    rng = np.random.default_rng([seed, _KIND_ID[kind], index])
    c = Case(kind, seed, index)
    c.variant = VARIANTS[kind][index % len(VARIANTS[kind])]
    if kind == "onnx":
        from . import gen_onnx
        m = gen_onnx.generate(rng, max_nodes or 12)
        c.proto = m
        c.model = m.SerializeToString()
        c.ops = [n.op_type for n in m.graph.node]
        shapes = [tuple(d.dim_value for d in vi.type.tensor_type.shape.dim) for vi in m.graph.input]
        c.samples = [[rng.uniform(-1, 1, s).astype(np.float32) for s in shapes] for _ in range(SAMPLES)]
    else:
        from ..exporters import tflite as tw
        from . import gen_int8
        g, ranges = gen_int8.generate(rng, max_nodes or 10)
        c.graph = g
        c.float_ranges = ranges
        c.model = tw.to_bytes(g)
        c.ops = [n.op for n in g.nodes]
        c.samples = int8_samples(g, ranges, rng)
    return c


def int8_samples(g, ranges: dict, rng, n: int = SAMPLES):
    out = []
    for _ in range(n):
        s = []
        for name in g.inputs:
            t = g.tensors[name]
            if t.dtype == "float32":
                lo, hi = ranges.get(name, (-1.0, 1.0))
                s.append(rng.uniform(lo, hi, t.shape).astype(np.float32))
            else:
                s.append(rng.integers(-128, 128, t.shape).astype(np.int8))
        out.append(s)
    return out


# --- the reference runtimes, in a worker process -------------------------------------------

def _reference(kind: str, model: bytes, samples):
    from ..commands import reference
    if kind == "onnx":
        outs, _ = reference.run_onnxruntime(model, samples)
    else:
        outs, _ = reference.run_tflm(model, samples)
    return [[np.asarray(o) for o in s] for s in outs]


class RefRunner:
    """onnxruntime / TFLite Micro in a separate process that may die."""

    def __init__(self):
        self._ex = None

    def _executor(self):
        if self._ex is None:
            self._ex = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self._ex

    def run(self, case: Case, timeout: float = 120):
        try:
            return self._executor().submit(_reference, case.kind, case.model, case.samples).result(timeout)
        except BrokenProcessPool:
            self.close()
            raise RuntimeError("the reference runtime crashed (its process died)") from None

    def close(self):
        if self._ex is not None:
            procs = list((getattr(self._ex, "_processes", None) or {}).values())
            self._ex.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                if p.is_alive():
                    p.kill()
            self._ex = None


# --- compiling with edgec ------------------------------------------------------------------

@dataclass
class Prepared:
    case: Case
    prefix: str
    files: dict
    inputs: list          # per sample, arrays in the compiled graph's input order
    out_specs: list       # (shape, dtype) per compiled output
    ref: list             # reference outputs per sample


def load_graph(case: Case):
    if case.kind == "onnx":
        from ..frontends import onnx as fe
        return fe.from_model(case.proto if case.proto is not None else _parse_onnx(case.model),
                             where=case.name)
    from ..frontends import tflite as fe
    return fe.from_bytes(case.model, name="model")


def _parse_onnx(data: bytes):
    import onnx
    return onnx.load_from_string(data)


def prepare(case: Case, prefix: str, ref) -> Prepared | Outcome:
    from ..pipeline import Options, compile_full
    try:
        g = load_graph(case)
        optimize, kernels = case.variant
        bundle, g2 = compile_full(g, Options(target="host", name=prefix, optimize=optimize,
                                             kernels=None if kernels == "auto" else kernels))
    except UnsupportedError as e:
        return Outcome(case, "edgec-error", f"UnsupportedError: {e}")
    except EdgecError as e:
        return Outcome(case, "edgec-error", f"EdgecError: {e}")
    except Exception as e:  # noqa: BLE001 - a crash in edgec
        tb = traceback.extract_tb(e.__traceback__)
        where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
        return Outcome(case, "edgec-error", f"{type(e).__name__}{where}: {e}")
    # the compiled graph's inputs, in order, by their source model id
    if case.kind == "onnx":
        src = [vi.name for vi in (case.proto or _parse_onnx(case.model)).graph.input]
    else:
        from tflite.Model import Model
        src = [int(i) for i in Model.GetRootAs(case.model, 0).Subgraphs(0).InputsAsNumpy()]
    order = [src.index(g2.tensors[i].origin) for i in g2.inputs]
    inputs = [[s[k] for k in order] for s in case.samples]
    specs = [(tuple(d["shape"]), d["dtype"]) for d in bundle.report["outputs"]]
    if len(specs) != len(ref[0]):
        return Outcome(case, "edgec-error", f"{len(specs)} outputs, the reference has {len(ref[0])}")
    files = {k: v for k, v in bundle.files.items() if k.endswith((".c", ".h"))}
    return Prepared(case, prefix, files, inputs, specs, ref)


# --- building and running a batch of bundles ---------------------------------------------------

DRIVER = r"""/* edgec fuzz driver: runs the cases of one batch. Generated. */
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
  int first, c, i, s, ii = 0, oi = 0;
  if (argc < 4) return 2;
  fin = fopen(argv[1], "rb");
  fout = fopen(argv[2], "wb");
  first = atoi(argv[3]);
  if (!fin || !fout) return 2;
  for (c = 0; c < %(n)d; ++c) {
    for (s = 0; s < %(samples)d; ++s) {
      void* ins[%(maxio)d];
      void* outs[%(maxio)d];
      int rc = 0;
      for (i = 0; i < n_in[c]; ++i) {
        ins[i] = malloc(in_bytes[ii + i] ? in_bytes[ii + i] : 1);
        if (fread(ins[i], 1, in_bytes[ii + i], fin) != in_bytes[ii + i]) return 3;
      }
      for (i = 0; i < n_out[c]; ++i) {
        outs[i] = malloc(out_bytes[oi + i] ? out_bytes[oi + i] : 1);
        memset(outs[i], 0xA5, out_bytes[oi + i]);
      }
      if (c >= first) {
        if (s == 0) { printf("start %%d\n", c); fflush(stdout); }
        rc = fns[c]((const void* const*)ins, outs);
        for (i = 0; i < n_out[c]; ++i) fwrite(outs[i], 1, out_bytes[oi + i], fout);
        fflush(fout);
        if (rc) { printf("rc %%d %%d\n", c, rc); fflush(stdout); }
        if (s == %(samples)d - 1) { printf("done %%d\n", c); fflush(stdout); }
      }
      for (i = 0; i < n_in[c]; ++i) free(ins[i]);
      for (i = 0; i < n_out[c]; ++i) free(outs[i]);
    }
    ii += n_in[c];
    oi += n_out[c];
  }
  fclose(fin);
  fclose(fout);
  return 0;
}
"""

# Beyond the -Wall -Wextra every bundle gets: what the generated C is also clean under
# (checked on every fuzz case; see docs/TRUST.md)
EXTRA_WARNINGS = ["-Wconversion", "-Wsign-conversion", "-Wdouble-promotion", "-Wshadow",
                  "-Wcast-qual", "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wpedantic"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
CROSS = ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
         "-Os"]


def _short(msg: str, n: int = 400) -> str:
    msg = " ".join(str(msg).split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def _diag(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if "error" in ln or "warning" in ln]
    return _short(" | ".join(lines[:3]) or stderr)


def run_batch(items: list[Prepared], work: Path, sanitize: bool = False, cross: bool = False,
              timeout: float = 120.0) -> list[Outcome]:
    """Compile the bundles of ``items``, link them into one driver, run, compare."""
    from ..target.toolchain import STRICT
    work.mkdir(parents=True, exist_ok=True)
    results: dict[int, Outcome] = {}
    san = SANITIZE if sanitize else []
    for p in items:
        for fname, text in p.files.items():
            (work / fname).write_text(text)
    # one compiler call for the whole batch; on failure, file by file to pin the culprit
    srcs = [f"{p.prefix}.c" for p in items]
    flags = [*STRICT, *EXTRA_WARNINGS, "-O1", *san]
    r = subprocess.run(["gcc", *flags, "-c", *srcs], cwd=work, capture_output=True, text=True)
    ok = list(items)
    if r.returncode != 0:
        ok = []
        for p in items:
            r1 = subprocess.run(["gcc", *flags, "-c", f"{p.prefix}.c"], cwd=work, capture_output=True,
                                text=True)
            if r1.returncode != 0:
                results[id(p)] = Outcome(p.case, "c-error", "gcc: " + _diag(r1.stderr))
            else:
                ok.append(p)
    if cross and ok and shutil.which(CROSS[0]):
        arm = work / "arm"
        arm.mkdir(exist_ok=True)
        cflags = [*CROSS, *STRICT, *EXTRA_WARNINGS, "-I..", "-c"]
        r = subprocess.run([*cflags, *[f"../{p.prefix}.c" for p in ok]], cwd=arm, capture_output=True,
                           text=True)
        if r.returncode != 0:
            keep = []
            for p in ok:
                r1 = subprocess.run([*cflags, f"../{p.prefix}.c"], cwd=arm, capture_output=True, text=True)
                if r1.returncode != 0:
                    results[id(p)] = Outcome(p.case, "c-error", "arm-none-eabi-gcc: " + _diag(r1.stderr))
                else:
                    keep.append(p)
            ok = keep
    if ok:
        _link_and_run(ok, work, san, timeout, results)
    return [results[id(p)] for p in items]


def _link_and_run(items: list[Prepared], work: Path, san, timeout, results) -> None:
    n = len(items)
    ib = [x.nbytes for p in items for x in p.inputs[0]]
    ob = [int(np.prod(s)) * dtypes.itemsize(dt) for p in items for s, dt in p.out_specs]
    src = DRIVER % dict(
        decls="\n".join(f"int {p.prefix}_invoke_generic(const void* const* inputs, "
                        f"void* const* outputs);" for p in items),
        n=n, samples=SAMPLES,
        maxio=max([1] + [len(p.inputs[0]) for p in items] + [len(p.out_specs) for p in items]),
        fns=", ".join(f"{p.prefix}_invoke_generic" for p in items),
        nin=", ".join(str(len(p.inputs[0])) for p in items),
        nout=", ".join(str(len(p.out_specs)) for p in items),
        nib=max(len(ib), 1), ib=", ".join(f"{b}ul" for b in ib) or "0",
        nob=max(len(ob), 1), ob=", ".join(f"{b}ul" for b in ob) or "0")
    (work / "driver.c").write_text(src)
    r = subprocess.run(["gcc", "-std=c99", "-O1", *san, "driver.c", *[f"{p.prefix}.o" for p in items],
                        "-lm", "-o", "driver"], cwd=work, capture_output=True, text=True)
    if r.returncode != 0:
        for p in items:
            results[id(p)] = Outcome(p.case, "c-error", "link: " + _diag(r.stderr))
        return
    with open(work / "inputs.bin", "wb") as f:
        for p in items:
            for s in p.inputs:
                for x in s:
                    f.write(np.ascontiguousarray(x).tobytes())
    per_case = [sum(int(np.prod(s)) * dtypes.itemsize(dt) for s, dt in p.out_specs) * SAMPLES
                for p in items]
    first = 0
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0")
    while first < n:
        outf = work / f"outputs_{first}.bin"
        try:
            r = subprocess.run(["./driver", "inputs.bin", outf.name, str(first)], cwd=work,
                               capture_output=True, text=True, timeout=timeout, env=env)
            stdout, rc, hung, err = r.stdout, r.returncode, False, r.stderr
        except subprocess.TimeoutExpired as e:
            stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            rc, hung, err = -1, True, ""
        data = outf.read_bytes() if outf.exists() else b""
        pos = 0
        done_upto = first
        started = None
        bad_rc = set()
        for line in stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "start":
                started = int(parts[1])
            elif len(parts) == 3 and parts[0] == "rc":
                bad_rc.add(int(parts[1]))
            elif len(parts) == 2 and parts[0] == "done":
                c = int(parts[1])
                p = items[c]
                chunk = data[pos:pos + per_case[c]]
                pos += per_case[c]
                if c in bad_rc:
                    results[id(p)] = Outcome(p.case, "crash", "invoke returned non-zero")
                else:
                    results[id(p)] = compare(p, _split(p, chunk))
                done_upto = c + 1
        if done_upto >= n and not hung:
            break
        c = started if started is not None and started >= done_upto else done_upto
        what = "hung (timeout)" if hung else f"crashed (exit {rc})"
        tail = " | ".join(ln for ln in err.strip().splitlines() if "ERROR" in ln or "runtime error" in ln
                          or "SUMMARY" in ln)[:300] if err else ""
        results[id(items[c])] = Outcome(items[c].case, "crash",
                                        f"the compiled model {what}" + (f": {tail}" if tail else ""))
        first = c + 1


def _split(p: Prepared, chunk: bytes):
    outs, pos = [], 0
    for _ in range(SAMPLES):
        o = []
        for shape, dt in p.out_specs:
            nb = int(np.prod(shape)) * dtypes.itemsize(dt)
            o.append(np.frombuffer(chunk[pos:pos + nb], dtype=dtypes.np_dtype(dt)).reshape(shape).copy())
            pos += nb
        outs.append(o)
    return outs


def compare(p: Prepared, got) -> Outcome:
    for j in range(len(p.out_specs)):
        g = np.stack([s[j] for s in got])
        r = np.stack([np.asarray(s[j]) for s in p.ref])
        if g.size != r.size:
            return Outcome(p.case, "mismatch", f"output {j}: {g.shape[1:]} elements vs reference "
                                                f"{r.shape[1:]}")
        r = r.reshape(g.shape)
        if g.dtype.kind == "f" or r.dtype.kind == "f":
            gf, rf = g.astype(np.float64), r.astype(np.float64)
            if not (np.isfinite(rf).all()):
                return Outcome(p.case, "ref-error", f"output {j}: the reference is not finite")
            tol = RTOL * float(np.abs(rf).max(initial=0)) + ATOL
            d = np.abs(gf - rf)
            d = np.where(np.isnan(d), np.inf, d)
            if (d > tol).any():
                k = int(np.argmax(d))
                return Outcome(p.case, "mismatch", f"output {j}: {int((d > tol).sum())}/{d.size} "
                                                    f"elements off, max |diff| {d.max():.3g} "
                                                    f"(tolerance {tol:.3g}) at flat index {k}: got "
                                                    f"{gf.reshape(-1)[k]:.7g}, reference {rf.reshape(-1)[k]:.7g}")
        else:
            if not np.array_equal(g.astype(np.int64), r.astype(np.int64)):
                d = np.abs(g.astype(np.int64) - r.astype(np.int64))
                return Outcome(p.case, "mismatch", f"output {j}: {int((d != 0).sum())}/{d.size} "
                                                    f"elements differ, max |diff| {int(d.max())}")
    return Outcome(p.case, "ok")


# --- one batch end to end ------------------------------------------------------------------------

def check_cases(cases: list[Case], ref: RefRunner, work: Path, sanitize=False, cross=False) -> list[Outcome]:
    """Reference, compile, run and compare a list of cases (one batch)."""
    outcomes: dict[int, Outcome] = {}
    prepared = []
    for k, c in enumerate(cases):
        try:
            r = ref.run(c)
        except Exception as e:  # noqa: BLE001 - the reference rejected or crashed on the model
            outcomes[k] = Outcome(c, "ref-error", _short(f"{type(e).__name__}: {e}", 300))
            continue
        p = prepare(c, f"c{k}", r)
        if isinstance(p, Outcome):
            outcomes[k] = p
        else:
            prepared.append((k, p))
    if prepared:
        res = run_batch([p for _, p in prepared], work, sanitize, cross)
        for (k, _), o in zip(prepared, res):
            outcomes[k] = o
    return [outcomes[k] for k in range(len(cases))]


# --- the run -------------------------------------------------------------------------------------

def case_from_file(path) -> Case:
    """A saved regression (``x.onnx`` or ``x.tflite`` with the inputs in ``x.npz``) as a Case."""
    path = Path(path)
    kind = "onnx" if path.suffix == ".onnx" else "int8"
    z = np.load(path.with_suffix(".npz"))
    arrays = [z[f"arr_{k}"] for k in range(len([f for f in z.files if f.startswith("arr_")]))]
    n = arrays[0].shape[0] if arrays else 1
    c = Case(kind, -1, -1, path.read_bytes(), [[a[i] for a in arrays] for i in range(n)])
    if "variant" in z.files:
        c.variant = tuple(str(v) for v in z["variant"])
    if kind == "onnx":
        c.proto = _parse_onnx(c.model)
        c.ops = [nd.op_type for nd in c.proto.graph.node]
    return c


def check_file(path, ref: RefRunner | None = None, work=None, sanitize: bool = False) -> Outcome:
    """Run one saved regression through the fuzzer's check."""
    own = ref is None
    ref = ref or RefRunner()
    if work is not None:
        Path(work).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="edgec-fuzz-", dir=work))
    try:
        return check_cases([case_from_file(path)], ref, tmp, sanitize)[0]
    finally:
        if own:
            ref.close()
        shutil.rmtree(tmp, ignore_errors=True)


def save_regression(o: Outcome, directory: Path) -> Path:
    """Write the (shrunk) model and its inputs: ``<name>.onnx|.tflite`` + ``<name>.npz``."""
    directory.mkdir(parents=True, exist_ok=True)
    c = o.case
    path = directory / f"{c.name}{c.suffix}"
    path.write_bytes(c.model)
    arrays = {f"arr_{k}": np.stack([s[k] for s in c.samples]) for k in range(len(c.samples[0]))}
    np.savez(directory / f"{c.name}.npz", variant=np.array(c.variant), **arrays)
    (directory / f"{c.name}.txt").write_text(
        f"{o.status}: {o.detail}\nops: {', '.join(c.ops)}\n"
        f"compiled with: optimize={c.variant[0]} kernels={c.variant[1]}\n"
        f"reproduce: python -m edgec.fuzz --kind {c.kind} --seed {c.seed} --start {c.index} "
        f"--graphs 1\n")
    return path
