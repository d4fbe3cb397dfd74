"""The user's TensorFlow Lite Micro: where it is (TFLM_DIR, TFLM_LIB), compiling a TFLM
bundle against it for firmware, and the tflite-micro Python interpreter's allocation
probe (how many arena bytes it needs).  edgec never builds TFLM itself."""
from __future__ import annotations

import multiprocessing as mp
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from ..ir.errors import EdgecError
from . import toolchain
from .capture import Fd2Capture


def cxx_compiler(cc: str) -> str:
    """The C++ driver beside a target's C compiler (arm-none-eabi-gcc -> arm-none-eabi-g++)."""
    if cc.endswith("gcc"):
        return cc[:-3] + "g++"
    if cc.endswith("clang"):
        return cc + "++"
    return "c++"


def tflm_try_allocate(model: Path | bytes, arena_size: int) -> tuple[bool, int | None]:
    """Does the TFLite Micro interpreter allocate the model in ``arena_size``
    bytes, and how many does it then report as used?  (False, None) when
    ``AllocateTensors`` fails for lack of memory."""
    from tflite_micro import runtime
    data = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    if arena_size <= 0:
        return False, None
    with Fd2Capture() as cap:
        try:
            it = runtime.Interpreter.from_bytes(
                bytes(data), arena_size=arena_size,
                intrepreter_config=runtime.InterpreterConfig.kAllocationRecording)
        except RuntimeError as e:
            if "allocate" in str(e):
                return False, None
            raise
        it.print_allocations()
    m = re.search(r"Arena allocation total (\d+) bytes", cap.text)
    return True, int(m.group(1)) if m else None


def _probe_child(conn, data: bytes, arena_size: int) -> None:
    import faulthandler
    faulthandler.disable()  # a crashing kernel's report is not the caller's business
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        conn.send(("ok", tflm_try_allocate(data, arena_size)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(e).__name__}: {str(e)[:200]}"))
    conn.close()


def tflm_try_allocate_isolated(model: Path | bytes, arena_size: int,
                               timeout: float = 120) -> tuple[bool, int | None]:
    """:func:`tflm_try_allocate` in a child process: with too small an arena some
    TFLM kernels crash instead of failing (a null temporary tensor), which must
    not take the caller down.  A crash counts as "does not allocate"."""
    data = bytes(model) if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    try:
        ctx = mp.get_context("fork")
    except ValueError:
        ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_probe_child, args=(child, data, arena_size), daemon=True)
    p.start()
    child.close()
    try:
        if not parent.poll(timeout):
            p.kill()
            raise EdgecError("the TFLite Micro interpreter did not finish allocating")
        kind, val = parent.recv()
    except EOFError:  # the child crashed
        p.join()
        return False, None
    finally:
        parent.close()
        p.join(5)
    if kind == "error":
        if val.startswith("ImportError") or val.startswith("ModuleNotFoundError"):
            raise ImportError(val)
        raise EdgecError(f"the TFLite Micro interpreter failed: {val}")
    return val


# ---------------------------------------------------------------------------
# firmware: the bundle compiled against the user's TFLM (edgec never builds TFLM)

@dataclass
class TflmInstall:
    """Where the user's TFLM is: its source tree, third-party headers, library,
    and how the library was built (CMSIS-NN kernels; release: no error strings)."""
    dir: Path
    third_party: Path
    lib: Path | None
    cmsis_nn: bool
    release: bool = False

    def includes(self) -> list[Path]:
        tp = self.third_party
        return [self.dir, tp / "flatbuffers" / "include", tp / "gemmlowp", tp / "ruy"]

    def defines(self) -> list[str]:
        d = ["-DTF_LITE_STATIC_MEMORY"] + (["-DCMSIS_NN"] if self.cmsis_nn else [])
        if self.release:  # TFLM's BUILD_TYPE=release: MicroPrintf does not exist
            d += ["-DNDEBUG", "-DTF_LITE_STRIP_ERROR_STRINGS"]
        return d


def archive_symbols(path: Path) -> set[str]:
    """The global symbols a static library (GNU ar) defines, from its index."""
    with open(path, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise EdgecError(f"{path} is not a static library (ar archive)")
        hdr = f.read(60)
        if len(hdr) < 60 or hdr[:16].strip() not in (b"/", b"/SYM64/"):
            return set()
        size = int(hdr[48:58])
        data = f.read(size)
    wide = hdr[:16].strip() == b"/SYM64/"
    w = 8 if wide else 4
    n = struct.unpack(">Q" if wide else ">I", data[:w])[0]
    names = data[w + n * w:].split(b"\0")[:n]
    return {x.decode("latin-1") for x in names}


def tflm_install(need_lib: bool = True, target_name: str = "cortex-m4") -> TflmInstall:
    """TFLM_DIR / TFLM_LIB (/ TFLM_CMSIS_NN) from the environment, checked; each
    missing piece is one line saying what to set."""
    d = os.environ.get("TFLM_DIR", "").strip()
    if not d:
        raise EdgecError("TFLM_DIR is not set: set it to your TensorFlow Lite Micro source tree "
                         "(the directory holding tensorflow/lite/micro)")
    root = Path(d).expanduser()
    if not (root / "tensorflow/lite/micro/micro_interpreter.h").is_file():
        raise EdgecError(f"TFLM_DIR={d} has no tensorflow/lite/micro/micro_interpreter.h: set it "
                         "to the TensorFlow Lite Micro source tree")
    tp = root / "tensorflow/lite/micro/tools/make/downloads"
    if not (tp / "flatbuffers/include").is_dir():
        tp = root / "third_party"
    tp = Path(os.environ.get("TFLM_THIRD_PARTY", "") or tp)
    if not (tp / "flatbuffers/include/flatbuffers/flatbuffers.h").is_file():
        raise EdgecError(f"no flatbuffers headers in {tp}: build TFLM once in TFLM_DIR (its make "
                         "fetches them) or set TFLM_THIRD_PARTY to the directory holding "
                         "flatbuffers/, gemmlowp/ and ruy/")
    lib = None
    libs = os.environ.get("TFLM_LIB", "").strip()
    if need_lib:
        if not libs:
            raise EdgecError(f"TFLM_LIB is not set: set it to your libtensorflow-microlite.a built "
                             f"for {target_name} (TFLM's make ... microlite writes it to "
                             "gen/<build>/lib/)")
        lib = Path(libs).expanduser()
        if not lib.is_file():
            raise EdgecError(f"TFLM_LIB={libs} does not exist: set it to your "
                             "libtensorflow-microlite.a")
    syms = archive_symbols(lib) if lib is not None else set()
    flag = os.environ.get("TFLM_CMSIS_NN", "").strip().lower()
    if flag in ("1", "yes", "true", "on"):
        cmsis = True
    elif flag in ("0", "no", "false", "off"):
        cmsis = False
    else:  # a CMSIS-NN build carries CMSIS-NN's functions
        cmsis = "arm_convolve_wrapper_s8" in syms
    release = bool(syms) and "_Z11MicroPrintfPKcz" not in syms
    return TflmInstall(root, tp, lib, cmsis, release)


SUPPORT_CC = """// edgec_tflm_support.cc: what TFLM's C++ needs from a bare-metal runtime
// (edgec's firmware harness; your application has its own).
// TFLM never frees anything; its classes' virtual destructors still name operator delete.
#include <cstddef>
extern "C" {
#include "edgec_fw.h"
}
void operator delete(void* p) noexcept { (void)p; }
void operator delete(void* p, std::size_t n) noexcept { (void)p; (void)n; }
extern "C" void __cxa_pure_virtual() {
  fw_puts("EDGEC-ERROR pure virtual call\\n");
  fw_exit(FW_EXIT_ERROR);
}
// TFLM's fatal errors and failed asserts: an error exit, not newlib's stdio + signals
extern "C" void abort(void) {
  fw_puts("EDGEC-ERROR abort() in TFLM\\n");
  fw_exit(FW_EXIT_ERROR);
}
extern "C" void __assert_func(const char* file, int line, const char* func, const char* expr) {
  (void)file; (void)line; (void)func; (void)expr;
  fw_puts("EDGEC-ERROR assertion failed in TFLM\\n");
  fw_exit(FW_EXIT_ERROR);
}
"""


def firmware_objects(target, bundle_dir: Path, prefix: str, out_dir: Path, flags, inst: TflmInstall,
                     harness_dir: Path | None = None):
    """Compile a TFLM bundle (its C model array, its C++ shim) and the small C++
    runtime support for firmware; warnings are errors in edgec's own files."""
    out_dir = Path(out_dir)
    objs = toolchain.compile_objects(target, [Path(bundle_dir) / f"{prefix}_model_data.c"],
                                     out_dir, [bundle_dir], list(flags), strict=True)
    (out_dir / "edgec_tflm_support.cc").write_text(SUPPORT_CC)
    cxx = cxx_path(target)
    for src in (Path(bundle_dir) / f"{prefix}.cc", out_dir / "edgec_tflm_support.cc"):
        obj = out_dir / (src.stem + "_cc.o")
        cmd = [cxx, "-std=c++17", "-Wall", "-Wextra", "-Werror", *target.cflags, *flags,
               "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics", *inst.defines(),
               f"-I{bundle_dir}", *([f"-I{harness_dir}"] if harness_dir else []),
               *[a for d in inst.includes() for a in ("-isystem", str(d))],
               "-c", str(src), "-o", str(obj)]
        toolchain.run(cmd, what=f"{Path(cxx).name} {src.name}")
        objs.append(obj)
    return objs


def cxx_path(target) -> str:
    pkg = "libstdc++-arm-none-eabi-newlib" if target.arch == "arm" else target.package
    return toolchain.which(cxx_compiler(target.cc), pkg)
