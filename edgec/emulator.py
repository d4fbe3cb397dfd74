"""Running compiled models: on the host (a generated runner program) and, for
microcontroller targets, in QEMU (see :mod:`edgec.firmware`)."""
from __future__ import annotations

import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import dtypes, toolchain
from .errors import CheckFailed, ToolchainError
from .targets import load as load_target
from .templating import render


@dataclass
class IoSpec:
    shape: tuple
    dtype: str

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * dtypes.itemsize(self.dtype)


def io_specs(report: dict):
    ins = [IoSpec(tuple(d["shape"]), d["dtype"]) for d in report["inputs"]]
    outs = [IoSpec(tuple(d["shape"]), d["dtype"]) for d in report["outputs"]]
    return ins, outs


def _io_ctx(specs):
    return [{"index": i, "bytes": s.nbytes} for i, s in enumerate(specs)]


class HostProgram:
    """The bundle compiled with the host gcc together with a file-driven runner."""

    def __init__(self, bundle_dir: Path, report: dict, work: Path, trace: bool = False,
                 sanitize: bool = False, opt_level: str = "2", extra_cflags=()):
        self.bundle_dir = Path(bundle_dir)
        self.report = report
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.ins, self.outs = io_specs(report)
        prefix = report["name"]
        target = load_target("host")
        runner_c = self.work / "runner.c"
        runner_c.write_text(render("harness/host_runner.c.j2", prefix=prefix,
                                   io={"inputs": _io_ctx(self.ins), "outputs": _io_ctx(self.outs)}))
        cflags = [f"-O{opt_level}", "-g", *extra_cflags]
        ldflags = []
        if trace:
            cflags.append("-DEDGEC_TRACE")
        if sanitize:
            san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                   "-fno-omit-frame-pointer"]
            cflags += san
            ldflags += san
        objs = toolchain.compile_objects(target, [self.bundle_dir / f"{prefix}.c"], self.work / "obj",
                                         [self.bundle_dir], cflags, strict=True)
        objs += toolchain.compile_objects(target, [runner_c], self.work / "obj", [self.bundle_dir],
                                          cflags, strict=False)
        self.exe = toolchain.link(target, objs, self.work / "runner", ldflags)

    def run(self, samples: list[list[np.ndarray]], trace: bool = False, timeout: float = 600):
        """Run every sample; returns (outputs per sample, trace records or None)."""
        fin = self.work / "inputs.bin"
        fout = self.work / "outputs.bin"
        ftr = self.work / "trace.bin"
        with open(fin, "wb") as f:
            for s in samples:
                for spec, x in zip(self.ins, s):
                    a = np.ascontiguousarray(np.asarray(x).astype(dtypes.np_dtype(spec.dtype)))
                    if a.size != int(np.prod(spec.shape)):
                        raise CheckFailed(f"input of shape {list(a.shape)} where {list(spec.shape)} is expected")
                    f.write(a.tobytes())
        cmd = [str(self.exe), str(fin), str(fout)] + ([str(ftr)] if trace else [])
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"the compiled model did not finish within {timeout:.0f} s (hang)") from None
        if p.returncode != 0:
            err = (p.stderr or "").strip().splitlines()
            raise CheckFailed("the compiled model crashed or failed on the host "
                              f"(exit {p.returncode}): " + " | ".join(err[:6]))
        data = fout.read_bytes()
        per = sum(s.nbytes for s in self.outs)
        if len(data) != per * len(samples):
            raise CheckFailed(f"the runner wrote {len(data)} bytes of outputs, expected {per * len(samples)}")
        outs = []
        pos = 0
        for _ in samples:
            o = []
            for spec in self.outs:
                a = np.frombuffer(data[pos:pos + spec.nbytes], dtype=dtypes.np_dtype(spec.dtype))
                o.append(a.reshape(spec.shape).copy())
                pos += spec.nbytes
            outs.append(o)
        records = parse_trace(ftr.read_bytes()) if trace else None
        return outs, records


def parse_trace(buf: bytes) -> dict:
    """{(sample, layer, output): bytes}"""
    rec = {}
    pos = 0
    while pos + 16 <= len(buf):
        sample, layer, out, n = struct.unpack_from("<iiiI", buf, pos)
        pos += 16
        rec[(sample, layer, out)] = buf[pos:pos + n]
        pos += n
    return rec


def run_checked(cmd, timeout: float, what: str):
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{what} timed out after {timeout:.0f} s (hang)") from None
    except OSError as e:
        raise ToolchainError(f"cannot run {cmd[0]}: {e.strerror}") from None
