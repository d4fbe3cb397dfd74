"""Running compiled models: on the host (a generated runner program) and, for
microcontroller targets, in QEMU (see :mod:`edgec.target.firmware`)."""
from __future__ import annotations

import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ir import dtypes, progress
from . import toolchain
from ..ir.errors import CheckFailed, ToolchainError
from .targets import load as load_target
from ..ir.templating import render


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
        objs += [self.bundle_dir / o for o in report.get("link_objects", [])]
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


# ---- QEMU ----------------------------------------------------------------

# Exit codes of the firmware harness (templates/harness/edgec_fw.h.j2).
FW_EXIT_PASS, FW_EXIT_MISMATCH, FW_EXIT_ERROR, FW_EXIT_FAULT = 0, 1, 2, 3


def qemu_command(target, elf=None, icount: bool = False) -> list[str]:
    """The QEMU command line that runs firmware of ``target``: UART on stdout,
    semihosting (exit codes, host files) on, no monitor; with ``icount`` one
    instruction = 1 ns of virtual time (deterministic tick counts)."""
    q = target.qemu
    if q is None:
        raise ToolchainError(f"target {target.name} has no emulator (no [qemu] section in its "
                             "target file): build it, flash it, run it on the board")
    cmd = [q.binary, "-M", q.machine, "-nographic", "-monitor", "none", "-serial", "stdio",
           "-semihosting-config", "enable=on,target=native"]
    if target.arch == "riscv":
        cmd += ["-bios", "none"]
    if icount:
        cmd += ["-icount", "shift=0"]
    if elf is not None:
        cmd += ["-kernel", str(elf)]
    return cmd


def qemu_command_line(target, icount: bool = False) -> str:
    """``qemu_command`` as a shell string without ``-kernel`` (for Makefiles); "" without an emulator."""
    if target.qemu is None:
        return ""
    return " ".join(qemu_command(target, None, icount))


@dataclass
class QemuRun:
    """The outcome of one firmware run. ``status``: "pass" (exit 0 with a result line),
    "mismatch", "error", "fault" (HardFault / trap), "timeout" (hang) or "crash"
    (the emulator died, e.g. a CPU lockup)."""
    status: str
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    command: list[str]
    timeout: float

    @property
    def ok(self) -> bool:
        return self.status == "pass"

    def lines(self, tag: str) -> list[str]:
        """Console lines ``EDGEC-<tag> ...`` without the tag."""
        pre = f"EDGEC-{tag}"
        return [ln[len(pre):].strip() for ln in self.stdout.splitlines() if ln.startswith(pre + " ")
                or ln == pre]

    def fields(self, tag: str) -> dict[str, str]:
        """key=value pairs of the first ``EDGEC-<tag>`` line."""
        ls = self.lines(tag)
        return dict(w.split("=", 1) for w in ls[0].split() if "=" in w) if ls else {}

    def describe(self) -> str:
        tail = " | ".join(ln for ln in self.stdout.strip().splitlines()[-4:])
        err = " | ".join((self.stderr or "").strip().splitlines()[-3:])
        what = {
            "pass": "passed",
            "mismatch": "ran, but its outputs differ from the expected ones",
            "error": "failed",
            "fault": "crashed (fault)",
            "timeout": f"did not finish within {self.timeout:g} s (hang)",
            "crash": f"the emulator exited abnormally (status {self.returncode})",
        }[self.status]
        msg = f"firmware {what}"
        fault = self.lines("FAULT")
        if fault:
            msg += f": {fault[0]}"
        elif tail:
            msg += f"; console: {tail}"
        if err and self.status in ("crash", "error"):
            msg += f"; stderr: {err}"
        return msg


def _classify(rc: int | None, out: str) -> str:
    if rc is None:
        return "timeout"
    if "EDGEC-FAULT" in out or rc == FW_EXIT_FAULT:
        return "fault"
    if rc == FW_EXIT_PASS:
        return "pass" if ("EDGEC-RESULT PASS" in out or "EDGEC-RESULT RAN" in out) else "error"
    if rc == FW_EXIT_MISMATCH and "EDGEC-RESULT FAIL" in out:
        return "mismatch"
    if 0 < rc < 128:
        return "error"
    return "crash"


def run_firmware(target, elf, cwd=None, timeout: float = 60, icount: bool = False,
                 watch: tuple[Path, int, int] | None = None) -> QemuRun:
    """Run a firmware ELF in QEMU under a timeout. Never raises on a failing
    firmware: the result's ``status`` says what happened.  ``watch`` = (file, bytes per
    sample, samples): the file the firmware writes its outputs to, sample by sample, shown
    as a progress bar of the samples done (when progress is shown)."""
    import time
    cmd = qemu_command(target, Path(elf).resolve(), icount)
    toolchain.which(cmd[0], target.qemu.package)
    t0 = time.monotonic()
    try:
        if watch is None:
            p = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout)
            rc, out, err = p.returncode, p.stdout, p.stderr
        else:
            rc, out, err = _run_watched(cmd, cwd, timeout, target, *watch)
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, e.stdout or b"", e.stderr or b""
    except OSError as e:
        raise ToolchainError(f"cannot run {cmd[0]}: {e.strerror}") from None
    out_s = out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out)
    err_s = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
    return QemuRun(_classify(rc, out_s), rc, out_s, err_s, time.monotonic() - t0, cmd, timeout)


def _run_watched(cmd, cwd, timeout: float, target, path: Path, per_sample: int, n: int):
    """subprocess.run with a progress bar that follows the size of the output file
    (``communicate`` with a short timeout, again and again, keeps reading the pipes)."""
    import time
    with progress.task(f"{target.name} in QEMU", n) as bar, \
            subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE) as p:
        deadline, done = time.monotonic() + timeout, 0
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise subprocess.TimeoutExpired(cmd, timeout)
                out, err = p.communicate(timeout=min(0.25, left))
                return p.returncode, out, err
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    p.kill()
                    out, err = p.communicate()
                    raise subprocess.TimeoutExpired(cmd, timeout, out, err) from None
            try:
                now = min(n, Path(path).stat().st_size // max(per_sample, 1))
            except OSError:
                now = done
            if now > done:
                bar.advance(now - done)
                done = now


def write_samples(path: Path, samples, specs) -> None:
    """Each sample's inputs as raw bytes, back to back (the runners' input format)."""
    with open(path, "wb") as f:
        for s in samples:
            for spec, x in zip(specs, s):
                a = np.ascontiguousarray(np.asarray(x).astype(dtypes.np_dtype(spec.dtype)))
                if a.size != int(np.prod(spec.shape)):
                    raise CheckFailed(f"input of shape {list(a.shape)} where {list(spec.shape)} is expected")
                f.write(a.tobytes())


def read_outputs(data: bytes, specs, n: int) -> list[list[np.ndarray]]:
    """The inverse for outputs: n samples of every output, back to back."""
    per = sum(s.nbytes for s in specs)
    if len(data) != per * n:
        raise CheckFailed(f"the runner wrote {len(data)} bytes of outputs, expected {per * n}")
    outs, pos = [], 0
    for _ in range(n):
        o = []
        for spec in specs:
            a = np.frombuffer(data[pos:pos + spec.nbytes], dtype=dtypes.np_dtype(spec.dtype))
            o.append(a.reshape(spec.shape).copy())
            pos += spec.nbytes
        outs.append(o)
    return outs


def run_checked(cmd, timeout: float, what: str):
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{what} timed out after {timeout:.0f} s (hang)") from None
    except OSError as e:
        raise ToolchainError(f"cannot run {cmd[0]}: {e.strerror}") from None
