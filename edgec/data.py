"""Sample files and model inputs: the one place edgec reads, makes and encodes samples.

Every option that reads samples goes through here: ``verify --inputs``, ``bench
--inputs``, ``build --firmware --test-inputs``, ``--calibration``, ``--eval`` and
``--tree-calibration``.  The data layer depends only on the IR (:mod:`edgec.ir.graph`,
:mod:`edgec.ir.dtypes`, :mod:`edgec.ir.errors`, :mod:`edgec.ir.limits`).

Files (:class:`ArrayFile`): an ``.npz`` (one array per model input, named after the
input, ``input0``/``input_0``/``arr_0`` by position, or ``x`` for a single-input
model; labels ``y`` and reference outputs beside them), one ``.npy``, a directory
of ``.npy`` files (a single-input model's samples, concatenated in name order), or
a ``.csv``/``.txt``/``.tsv`` table (single-input models: one sample per line, the first
columns, a header line and further columns such as a label ignored).  Sample files
are untrusted:

* only regular files are opened (a FIFO, a device or a socket is refused before it
  is opened; symlinks to regular files are fine);
* an ``.npz``'s members are checked from the zip directory and each ``.npy``
  header (shape and dtype) before any data is decompressed: the decoded size of
  all members together is limited (``max_bytes=``, by default the ``data_bytes``
  budget of :mod:`edgec.ir.limits`, ``--limit data_bytes=N``), so a zip bomb costs a few
  kilobytes of reading; object,
  string, bytes, structured and 0-d arrays are refused (nothing is unpickled);
* every problem is one :class:`~edgec.ir.errors.EdgecError` line naming the file and
  the array.

Values (:func:`fit`, used by :func:`load` and :func:`encode`) become the model
input's type without any silent cast:

* float inputs take float arrays (float64 is rounded to float32; values beyond
  float32's range are refused);
* an integer input with a scale and zero point (int8 models) takes float values
  quantized as TFLite's QUANTIZE op does (``round(x / scale)`` half away from zero in
  float32, plus the zero point, clamped to the type; values whose level is beyond
  int32, where TFLite's result is undefined, are refused), and the caller is told in
  one note; with ``raw=True`` (``--raw-inputs``) the file holds the integer levels
  themselves and non-integer values are refused;
* integer values (and the exact integers of a raw or unquantized input) must lie in
  the type's range; NaN, infinities, values beyond float32, complex, boolean and
  datetime arrays are refused for integer inputs;
* the inputs of ``--quantized-input`` tree models (``g.meta.input_encoding``)
  take float features, encoded as the grid's levels (:func:`feature_levels`:
  NaN is the missing-value level), or integer levels;
* shapes: the input's shape, or ``[N, *shape]`` (size-1 dimensions may be left out);
  anything else is refused with both shapes named.
"""
from __future__ import annotations

import io
import math
import os
import stat
import struct
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ir import dtypes, limits
from .ir.errors import EdgecError
from .ir.graph import Graph, Tensor

# Decoded bytes of sample data one file may hold (all members of an .npz, all files
# of a directory): the caller's max_bytes, else limits.current().data_bytes (256 MiB,
# --limit data_bytes=N).
LIMIT = "data_bytes"
LABEL_KEYS = ("y", "labels", "label", "targets")
OUTPUT_KEYS = ("outputs", "y_ref", "reference")
SINGLE_INPUT_KEYS = ("x", "inputs", "input", "data", "images")
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
# An .npz's zip directory, read whole by zipfile: bounded before it is parsed.
MAX_MEMBERS = 4096
MAX_ZIP_DIRECTORY = 4 << 20
MAX_NPY_HEADER = 10000
MAX_DIR_FILES = 100_000


@dataclass
class Dataset:
    """Samples (one list of per-input arrays per sample, in the graph's input order)
    and, for evaluation, labels (N,) or reference outputs (one [N, ...] array per output)."""

    samples: list
    source: str
    labels: np.ndarray | None = None
    ref_outputs: list | None = None
    notes: list = field(default_factory=list)

    def __len__(self):
        return len(self.samples)


# --- limits and messages -----------------------------------------------------------

def max_bytes_default() -> int:
    """The ``data_bytes`` budget of :mod:`edgec.ir.limits` (``--limit data_bytes=N``)."""
    return getattr(limits.current(), LIMIT)


def _size(n: int) -> str:
    for unit, k in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << k:
            return f"{n / (1 << k):.4g} {unit}"
    return f"{n} B"


def _over_limit(what: str, holds: str, n: int, limit: int) -> str:
    return (f"{what}: {holds} {n:,} bytes of samples, over the limit {LIMIT}={limit:,} "
            f"({_size(limit)} decoded per sample file); raise it with --limit {LIMIT}=N "
            "if the file is trusted")


def _show(name) -> str:
    """A name from a file, quoted, non-printable characters escaped, cut to 80 characters."""
    s = str(name)
    return repr(s if len(s) <= 80 else s[:77] + "...")


def _where(path) -> str:
    s = str(path)
    return s if s.isprintable() else repr(s)


def _first_line(e: BaseException) -> str:
    s = " ".join(str(e).split())
    return (s[:160] + "...") if len(s) > 160 else (s or type(e).__name__)


# --- files ---------------------------------------------------------------------------

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((k for test, k in _KINDS if test(mode)), "not a regular file")


def _stat(path: Path, what: str) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise EdgecError(f"{what}: no such file or directory", _where(path)) from None
    except OSError as e:
        raise EdgecError(f"{what}: cannot read ({e.strerror or _first_line(e)})", _where(path)) from None


def open_regular(path, what: str):
    """``path`` opened for binary reading if it is a regular file (or a symlink to
    one). Anything else is refused before it is opened; the check is repeated on the
    open descriptor (opened non-blocking, so a FIFO swapped in cannot hang it)."""
    p = Path(path)
    st = _stat(p, what)
    if not stat.S_ISREG(st.st_mode):
        raise EdgecError(f"{what}: {_kind(st.st_mode)}, not a regular file", _where(p))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(p, flags)
    except OSError as e:
        raise EdgecError(f"{what}: cannot read ({e.strerror or _first_line(e)})", _where(p)) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise EdgecError(f"{what}: {_kind(st.st_mode)}, not a regular file", _where(p))
    return os.fdopen(fd, "rb")


@dataclass
class ArraySpec:
    """One array of a file as its header describes it (nothing decoded yet)."""
    name: str
    shape: tuple
    dtype: np.dtype
    fortran: bool
    nbytes: int


def _npy_header(fp, what: str, label: str, where: str) -> tuple[tuple, bool, np.dtype, int]:
    """(shape, fortran order, dtype, header length) of the .npy stream ``fp``,
    refusing what edgec never reads as samples."""
    try:
        return _npy_header_checked(fp, what, label)
    except EdgecError as e:
        raise EdgecError(str(e), where) from None


def _npy_header_checked(fp, what: str, label: str) -> tuple[tuple, bool, np.dtype, int]:
    from numpy.lib import format as npf
    try:
        version = npf.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dt = npf.read_array_header_1_0(fp, max_header_size=MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, fortran, dt = npf.read_array_header_2_0(fp, max_header_size=MAX_NPY_HEADER)
        else:   # 3.0 exists only for structured dtypes with non-Latin-1 field names
            raise ValueError(f".npy format version {version[0]}.{version[1]}")
        hlen = fp.tell()
    except EdgecError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoding failure of a hostile file
        raise EdgecError(f"{what}: {label} is not a readable .npy array ({_first_line(e)})") from None
    if dt.hasobject:
        raise EdgecError(f"{what}: {label} holds Python objects ({dt}); edgec reads numeric arrays "
                         "only and never unpickles")
    if dt.fields is not None or dt.kind == "V":
        raise EdgecError(f"{what}: {label} has a structured dtype ({dt}); samples are numeric arrays")
    if dt.kind in "SU":
        raise EdgecError(f"{what}: {label} holds {'bytes' if dt.kind == 'S' else 'strings'} "
                         f"({dt}); samples are numeric arrays")
    if dt.subdtype is not None or dt.itemsize == 0:
        raise EdgecError(f"{what}: {label} has dtype {dt}; samples are numeric arrays")
    if not shape:
        raise EdgecError(f"{what}: {label} is 0-d (one value); samples need a sample dimension")
    if any(d < 0 for d in shape):
        raise EdgecError(f"{what}: {label} has a negative dimension {list(shape)}")
    return tuple(int(d) for d in shape), bool(fortran), dt, hlen


class ArrayFile:
    """The arrays of one sample file, validated from headers before anything is decoded.

    ``names``: the arrays' keys (``.npz`` member names without ``.npy``; ``arr_0``
    for a lone ``.npy``; file names for a directory); ``spec(name)``; ``read(name)``.
    Use as a context manager (an ``.npz`` stays open)."""

    def __init__(self, path, what: str = "inputs", max_bytes: int | None = None):
        self.path = Path(path)
        self.what = what
        self.where = _where(self.path)
        self.max_bytes = max_bytes_default() if max_bytes is None else int(max_bytes)
        self.specs: dict[str, ArraySpec] = {}
        self._files: dict[str, Path] = {}       # directory: name -> file
        self._zip = None
        self._members: dict[str, zipfile.ZipInfo] = {}
        self._fp = None
        self.total = 0
        st = _stat(self.path, what)
        if stat.S_ISDIR(st.st_mode):
            self.kind = "dir"
            self._open_dir()
            return
        self._fp = open_regular(self.path, what)
        try:
            head = self._fp.read(6)
            self._fp.seek(0)
            if head.startswith(b"PK"):
                self.kind = "npz"
                self._open_npz()
            elif head == b"\x93NUMPY":
                self.kind = "npy"
                self._open_npy()
            elif self.path.suffix.lower() in CSV_SUFFIXES:
                self.kind = "csv"
            else:
                raise EdgecError(f"{what}: not an .npz, .npy or .csv file", self.where)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        for f in (self._zip, self._fp):
            if f is not None:
                f.close()
        self._zip = self._fp = None

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    def spec(self, name: str) -> ArraySpec:
        return self.specs[name]

    def _add(self, name: str, shape, fortran, dt, label: str) -> None:
        nbytes = math.prod(shape) * dt.itemsize
        self.total += nbytes
        if self.total > self.max_bytes:
            holds = f"{label} ({dt} {list(shape)}) brings the file to" if len(self.specs) else \
                f"{label} ({dt} {list(shape)}) holds"
            raise EdgecError(_over_limit(self.what, holds, self.total, self.max_bytes), self.where)
        self.specs[name] = ArraySpec(name, shape, dt, fortran, nbytes)

    # .npz -----------------------------------------------------------------------------
    def _open_npz(self) -> None:
        fp, what = self._fp, self.what
        size = os.fstat(fp.fileno()).st_size
        tail_len = min(size, 22 + 0xFFFF)
        fp.seek(size - tail_len)
        tail = fp.read(tail_len)
        i = tail.rfind(b"PK\x05\x06")
        if i < 0 or i + 22 > len(tail):
            raise EdgecError(f"{what}: not a valid .npz file (no zip directory)", self.where)
        entries, cd_size, cd_offset = struct.unpack_from("<HII", tail, i + 10)
        zip64 = i >= 20 and tail[i - 20:i - 16] == b"PK\x06\x07"
        if zip64 or entries > MAX_MEMBERS or cd_size > MAX_ZIP_DIRECTORY:
            raise EdgecError(f"{what}: the .npz's zip directory is too large "
                             f"({'zip64' if zip64 else f'{entries:,} members, {cd_size:,} bytes'}); "
                             f"edgec reads at most {MAX_MEMBERS:,} members", self.where)
        fp.seek(0)
        try:
            self._zip = zipfile.ZipFile(fp)
            infos = self._zip.infolist()
        except Exception as e:  # noqa: BLE001 - zipfile's errors on a hostile file
            raise EdgecError(f"{what}: not a valid .npz file ({_first_line(e)})", self.where) from None
        for info in infos:
            if info.is_dir():
                continue
            label = f"member {_show(info.filename)}"
            if not info.filename.endswith(".npy"):
                raise EdgecError(f"{what}: {label} is not a .npy array", self.where)
            name = info.filename[:-4]
            if name in self.specs:
                raise EdgecError(f"{what}: {label} appears twice", self.where)
            if info.file_size > self.max_bytes - self.total + MAX_NPY_HEADER + 128:
                raise EdgecError(_over_limit(what, f"{label} decompresses to", info.file_size,
                                             self.max_bytes), self.where)
            with self._member(info, label) as m:
                shape, fortran, dt, hlen = _npy_header(m, what, label, self.where)
            nbytes = math.prod(shape) * dt.itemsize
            if hlen + nbytes != info.file_size:
                if hlen + nbytes > self.max_bytes:
                    raise EdgecError(_over_limit(what, f"{label} ({dt} {list(shape)}) holds", nbytes,
                                                 self.max_bytes), self.where)
                raise EdgecError(f"{what}: {label} is {info.file_size:,} bytes but its header "
                                 f"describes {hlen + nbytes:,} ({dt} {list(shape)})", self.where)
            self._add(name, shape, fortran, dt, label)
            self._members[name] = info
        if not self.specs:
            raise EdgecError(f"{what}: the .npz holds no arrays", self.where)

    def _member(self, info, label):
        try:
            return self._zip.open(info)
        except Exception as e:  # noqa: BLE001
            raise EdgecError(f"{self.what}: {label} is unreadable ({_first_line(e)})", self.where) from None

    # .npy and directories ---------------------------------------------------------------
    def _open_npy(self) -> None:
        shape, fortran, dt, hlen = _npy_header(self._fp, self.what, "the array", self.where)
        size = os.fstat(self._fp.fileno()).st_size
        nbytes = math.prod(shape) * dt.itemsize
        if nbytes > self.max_bytes:
            raise EdgecError(_over_limit(self.what, f"the array ({dt} {list(shape)}) holds", nbytes,
                                         self.max_bytes), self.where)
        if hlen + nbytes != size:
            raise EdgecError(f"{self.what}: the file is {size:,} bytes but its header describes "
                             f"{hlen + nbytes:,} ({dt} {list(shape)})", self.where)
        self._add("arr_0", shape, fortran, dt, "the array")

    def _open_dir(self) -> None:
        try:
            with os.scandir(self.path) as it:
                names = []
                for e in it:
                    if e.name.endswith(".npy"):
                        names.append(e.name)
                        if len(names) > MAX_DIR_FILES:
                            raise EdgecError(f"{self.what}: more than {MAX_DIR_FILES:,} .npy files",
                                             self.where)
        except OSError as e:
            raise EdgecError(f"{self.what}: cannot read the directory ({e.strerror})", self.where) from None
        if not names:
            raise EdgecError(f"{self.what}: the directory holds no .npy files", self.where)
        for name in sorted(names):
            f = self.path / name
            label = f"file {_show(name)}"
            with open_regular(f, self.what) as fp:
                shape, fortran, dt, hlen = _npy_header(fp, self.what, label, self.where)
                size = os.fstat(fp.fileno()).st_size
            nbytes = math.prod(shape) * dt.itemsize
            if hlen + nbytes != size and hlen + nbytes <= self.max_bytes:
                raise EdgecError(f"{self.what}: {label} is {size:,} bytes but its header "
                                 f"describes {hlen + nbytes:,} ({dt} {list(shape)})", self.where)
            self._add(name, shape, fortran, dt, label)
            self._files[name] = f

    # reading ----------------------------------------------------------------------------
    def read(self, name: str) -> np.ndarray:
        """Decode one array (its size was checked when the file was opened)."""
        sp = self.specs[name]
        if self.kind == "npz":
            label = f"member {_show(self._members[name].filename)}"
            with self._member(self._members[name], label) as m:
                return self._decode(m, sp, label)
        if self.kind == "npy":
            self._fp.seek(0)
            return self._decode(self._fp, sp, "the array")
        label = f"file {_show(name)}"
        with open_regular(self._files[name], self.what) as fp:
            return self._decode(fp, sp, label)

    def _decode(self, fp, sp: ArraySpec, label: str) -> np.ndarray:
        try:
            shape, fortran, dt, _ = _npy_header(fp, self.what, label, self.where)
            if (shape, fortran, dt) != (sp.shape, sp.fortran, sp.dtype):
                raise ValueError("the header changed while reading")
            buf = fp.read(sp.nbytes)
            if len(buf) != sp.nbytes:
                raise ValueError(f"{len(buf):,} of {sp.nbytes:,} bytes of data")
            if self.kind == "npz":
                fp.read(1)   # reach the member's end: zipfile checks its CRC there
        except EdgecError:
            raise
        except Exception as e:  # noqa: BLE001 - truncated data, a bad CRC, a decompressor error
            raise EdgecError(f"{self.what}: {label} is unreadable ({_first_line(e)})", self.where) from None
        a = np.frombuffer(buf, dtype=sp.dtype, count=math.prod(sp.shape))
        return a.reshape(sp.shape, order="F" if sp.fortran else "C")

    def read_csv(self, columns: int) -> np.ndarray:
        """[R, columns] float64: the first ``columns`` fields of every line (a first line
        that is not numeric is a header; further columns are ignored)."""
        fp, what = self._fp, self.what
        size = os.fstat(fp.fileno()).st_size
        if size > self.max_bytes:
            raise EdgecError(_over_limit(what, "the file holds", size, self.max_bytes), self.where)
        fp.seek(0)
        head = fp.read(1 << 16).decode("utf-8", errors="replace")
        head = head.replace("\r\n", "\n").replace("\r", "\n")
        lines = [(i, ln) for i, ln in enumerate(head.split("\n")) if ln.strip()
                 and not ln.lstrip().startswith("#")]
        if not lines:
            raise EdgecError(f"{what}: the file holds no rows", self.where)
        first_i, first = lines[0]
        delim = next((d for d in (",", ";", "\t") if d in first), None)
        cells = first.split(delim)
        skip = 0
        try:
            [float(c) for c in cells[:columns]]
        except ValueError:
            skip = first_i + 1        # a header line
        fp.seek(0)
        text = io.TextIOWrapper(fp, encoding="utf-8", errors="replace", newline=None)
        max_rows = self.max_bytes // (8 * columns) + 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                a = np.loadtxt(text, dtype=np.float64, delimiter=delim, usecols=range(columns),
                               skiprows=skip, ndmin=2, max_rows=max_rows, comments="#")
        except Exception as e:  # noqa: BLE001 - numpy's parse errors: one line
            raise EdgecError(f"{what}: not a table of at least {columns} numbers per line "
                             f"({_first_line(e)})", self.where) from None
        finally:
            text.detach()
        if a.shape[0] >= max_rows:
            raise EdgecError(_over_limit(what, "the rows hold more than", a.shape[0] * 8 * columns,
                                         self.max_bytes), self.where)
        if a.shape[0] == 0:
            raise EdgecError(f"{what}: the file holds no rows", self.where)
        return a


# --- values --------------------------------------------------------------------------

def round_half_away(x: np.ndarray) -> np.ndarray:
    """std::round on every element (half away from zero), exact for float32 and float64:
    ``floor(x + 0.5)`` is not (0.49999997f + 0.5f rounds to 1.0f)."""
    t = np.trunc(x)
    with np.errstate(invalid="ignore"):
        return t + np.where(np.abs(x - t) >= 0.5, np.sign(x), 0)


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str,
             label: str = "the values") -> tuple[np.ndarray, int]:
    """TFLite's QUANTIZE (AffineQuantize): ``round(x / scale)`` half away from zero with
    the division in float32, plus the zero point (int32), clamped to ``dtype``.  Values
    where TFLite's result is undefined (``x / scale`` beyond int32: its cast and addition
    overflow) are refused.  Returns (levels, how many values were clamped)."""
    lo, hi = dtypes.int_range(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.asarray(x, np.float32) / np.float32(scale)
    r = round_half_away(v.astype(np.float64)) + int(zero_point)
    with np.errstate(invalid="ignore"):
        undefined = ~((r >= -(1 << 31)) & (r < (1 << 31)) & (np.abs(v) < 2.0 ** 31))
    if undefined.any():
        e = float(np.asarray(x).flat[int(np.flatnonzero(undefined)[0])])
        raise EdgecError(f"{label} holds values whose quantized level is beyond int32 (e.g. {e:g} "
                         f"at scale {np.float32(scale)!s}; {_count(undefined)}): TFLite's QUANTIZE "
                         "is undefined there")
    clamped = int(np.count_nonzero((r < lo) | (r > hi)))
    return np.clip(r, lo, hi).astype(dtypes.np_dtype(dtype)), clamped


def feature_levels(x: np.ndarray, lo, inv, bits: int) -> np.ndarray:
    """The integer levels of tree features (``--tree-features``; the input of
    ``--quantized-input`` models): ``clamp(floor((x - lo) * inv + 0.5), 0, 2^bits - 2)``
    per feature (last axis), in float32 arithmetic; NaN -> ``2^bits - 1``.  int64."""
    top = (1 << bits) - 2
    x = np.asarray(x).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        v = (x - np.asarray(lo, np.float32)) * np.asarray(inv, np.float32)
        q = np.floor(v + np.float32(0.5))
        q = np.where(v <= 0, 0, np.where(v >= np.float32(top), top, q))
        q = np.where(np.isnan(v), top + 1, q)
    return q.astype(np.int64)


_F32_MAX = float(np.finfo(np.float32).max)


def _count(mask) -> str:
    return f"{int(np.count_nonzero(mask)):,} of {mask.size:,}"


def _check_float32(a: np.ndarray, label: str, allow_nan: bool, into: str) -> None:
    fin = np.isfinite(a)
    if not allow_nan and not fin.all():
        raise EdgecError(f"{label} holds NaN or infinite values ({_count(~fin)}); {into}")
    if a.dtype.itemsize > 4:
        big = np.abs(np.where(fin, a, 0.0)) > _F32_MAX
        if big.any():
            v = float(a[big].flat[0])
            raise EdgecError(f"{label} holds values beyond float32's range (e.g. {v:g}; {_count(big)}); "
                             f"{into}")


def fit(g: Graph, name: str, a, *, label: str, raw: bool = False, allow_nan: bool = True,
        notes: list | None = None, what: str = "inputs") -> np.ndarray:
    """``a`` ([N, ...] samples for input ``name`` of ``g``, shape already checked) in
    the input's element type, by the rules of the module doc.  ``label`` names the
    array in messages; ``notes`` collects what was done to the values (one line each)."""
    t = g.tensors[name]
    a = np.asarray(a)
    k = a.dtype.kind
    dt = t.dtype
    inp = f"{_input_label(g, name)} ({dt})"
    if k == "c":
        raise EdgecError(f"{label} holds complex values; {inp} takes real numbers")
    if k in "mM":
        raise EdgecError(f"{label} holds dates/times ({a.dtype}); {inp} takes numbers")
    if k not in "biuf":
        raise EdgecError(f"{label} has dtype {a.dtype}; {inp} takes numbers")
    if dt == "bool":
        if k == "b":
            return a.astype(bool)
        if k in "iu" and np.all((a == 0) | (a == 1)):
            return a != 0
        raise EdgecError(f"{label} has dtype {a.dtype}; {inp} takes booleans (or 0 and 1)")
    if k == "b":
        raise EdgecError(f"{label} holds booleans; {inp} takes numbers (convert them explicitly)")
    npdt = dtypes.np_dtype(dt)
    if dtypes.is_float(dt):
        if k != "f":
            raise EdgecError(f"{label} has dtype {a.dtype} but {inp} is float (convert it with "
                             f".astype(numpy.{dt}))")
        if dt == "float32":
            _check_float32(a, label, allow_nan, f"{inp} takes float32 values")
        elif not allow_nan and not np.isfinite(a).all():
            raise EdgecError(f"{label} holds NaN or infinite values ({_count(~np.isfinite(a))})")
        return a.astype(npdt)
    lo, hi = dtypes.int_range(dt)
    enc = g.meta.input_encoding.get(name)
    if k == "f" and not raw and enc is not None:
        _check_float32(a, label, True, f"{inp} takes levels of float32 features")
        bits = int(enc["bits"])
        q = feature_levels(a, enc["lo"], enc["inv"], bits)
        _note(notes, f"{what}: float features encoded as the {bits}-bit levels of {inp}'s grid "
                     f"(clamp(floor((x - lo) * inv + 0.5), 0, {enc['top']}); NaN -> {enc['nan']})")
        return q.astype(npdt)
    if k == "f" and not raw and t.quant is not None:
        if t.quant.scale.size != 1:
            raise EdgecError(f"{label} holds float values but {inp} is quantized per axis; give its "
                             "integer levels (--raw-inputs)")
        _check_float32(a, label, False, f"{inp} quantizes finite float32 values only")
        s, z = t.quant.scale[0], int(t.quant.zero_point[0])
        q, clamped = quantize(a, s, z, dt, label)
        _note(notes, f"{what}: float values quantized for {inp} with its scale {s!s} and zero point "
                     f"{z} (TFLite's QUANTIZE: round half away from zero, clamped to [{lo}, {hi}]"
                     + (f"; {clamped:,} of {a.size:,} values clamped" if clamped else "") + ")")
        return q
    if k == "f":
        why = "--raw-inputs: the file holds its integer levels" if raw else \
            "it has no scale and zero point to quantize with"
        fin = np.isfinite(a)
        if not fin.all():
            raise EdgecError(f"{label} holds NaN or infinite values ({_count(~fin)}) for {inp} ({why})")
        frac = a != np.trunc(a)
        if frac.any():
            raise EdgecError(f"{label} holds non-integer values (e.g. {float(a[frac].flat[0]):g}; "
                             f"{_count(frac)}) for {inp} ({why})")
    amin, amax = a.min(), a.max()
    if amin < lo or amax > hi:
        bad = (a < lo) | (a > hi)
        v = a[bad].flat[0]
        raise EdgecError(f"{label} holds values outside {dt}'s range [{lo}, {hi}] (e.g. "
                         f"{v.item():g}; {_count(bad)}); {inp} takes them as they are, "
                         "so they are refused rather than wrapped")
    return a.astype(npdt)


def _note(notes: list | None, text: str) -> None:
    if notes is not None and text not in notes:
        notes.append(text)


def _squeezed(shape) -> list[int]:
    return [int(d) for d in shape if d != 1]


def _want(shape) -> str:
    shown = shape[1:] if len(shape) > 1 and shape[0] == 1 else shape
    return f"[N, {', '.join(str(d) for d in shown)}]"


def as_batch(a: np.ndarray, t: Tensor, label: str, input_label: str) -> np.ndarray:
    """``a`` as [N, *shape] of tensor ``t``: one sample of exactly its shape, or a
    leading sample dimension over the shape (size-1 dimensions may be left out)."""
    shape = tuple(t.shape)
    if tuple(a.shape) == shape:
        return a[None]
    if a.ndim >= 1 and _squeezed(a.shape[1:]) == _squeezed(shape):
        if a.shape[0] == 0:
            raise EdgecError(f"{label} holds no samples (shape {list(a.shape)})")
        return a.reshape((a.shape[0],) + shape)
    raise EdgecError(f"{label} has shape {list(a.shape)}, which does not fit {input_label} of shape "
                     f"{list(shape)} (expected {_want(shape)})")


def _input_label(g: Graph, name: str) -> str:
    """How messages name an input: its name in the model (TFLite origins are indices)."""
    t = g.tensors[name]
    return f"input {_show(t.origin if isinstance(t.origin, str) else name)}"


def input_keys(g: Graph, i: int) -> list[str]:
    """The array names that hold input ``i`` in a sample file, in order of preference."""
    name = g.inputs[i]
    t = g.tensors[name]
    keys = [name]
    if t.origin is not None and str(t.origin) != name:
        keys.append(str(t.origin))
    keys += [f"input{i}", f"input_{i}", f"arr_{i}"]
    if len(g.inputs) == 1:
        keys += list(SINGLE_INPUT_KEYS)
    return keys


def _is_target(key: str) -> bool:
    return key in LABEL_KEYS or key in OUTPUT_KEYS or key.startswith("output")


# --- loading -------------------------------------------------------------------------

def load(g: Graph, source, what: str = "inputs", *, max_samples: int | None = None,
         targets: bool = False, raw: bool = False, allow_nan: bool = True,
         max_bytes: int | None = None) -> Dataset:
    """Samples for ``g``'s inputs from ``source``: a path (see :class:`ArrayFile`), a
    :class:`Dataset` (returned as it is), or arrays (one [N, ...] batch per input).
    ``what`` names the data in messages (``calibration``, ``eval``, ``inputs``...);
    ``targets``: also labels (``y``...) and reference outputs (``output0``...);
    ``raw``: integer inputs take the file's values as their levels (no quantization);
    ``allow_nan``: NaN and infinities are fine in float inputs."""
    if isinstance(source, Dataset):
        return source
    notes: list[str] = []
    if isinstance(source, (str, os.PathLike)):
        with ArrayFile(source, what, max_bytes) as af:
            batches, arrays = _file_batches(g, af, what, raw, allow_nan, notes, targets)
            src = str(source)
    else:
        arrs = list(source) if isinstance(source, (list, tuple)) else [source]
        if len(arrs) != len(g.inputs):
            raise EdgecError(f"{what}: {len(arrs)} arrays for {len(g.inputs)} inputs")
        batches = []
        for i, (a, name) in enumerate(zip(arrs, g.inputs)):
            label = f"{what}: array {i}"
            b = as_batch(np.asarray(a), g.tensors[name], label, _input_label(g, name))
            batches.append(fit(g, name, b, label=label, raw=raw, allow_nan=allow_nan, notes=notes,
                               what=what))
        arrays, src = {}, "arrays"
    where = _where(src) if src != "arrays" else None
    n = batches[0].shape[0] if batches else 0
    if any(b.shape[0] != n for b in batches):
        raise EdgecError(f"{what}: the inputs have different numbers of samples "
                         f"({', '.join(str(b.shape[0]) for b in batches)})", where)
    if n == 0:
        raise EdgecError(f"{what}: no samples", where)
    ds = Dataset([], src, notes=notes)
    if targets and arrays:
        _targets(g, ds, arrays, n, what, where)
    if max_samples is not None and n > max_samples:
        ds.notes.append(f"used the first {max_samples} of {n} samples")
        n = max_samples
    ds.samples = [[b[i] for b in batches] for i in range(n)]
    if ds.labels is not None:
        ds.labels = ds.labels[:n]
    if ds.ref_outputs is not None:
        ds.ref_outputs = [o[:n] for o in ds.ref_outputs]
    return ds


def _file_batches(g, af: ArrayFile, what, raw, allow_nan, notes, targets):
    """Per-input batches from an open file, and the decoded target arrays by name."""
    where = af.where
    if af.kind in ("dir", "csv") and len(g.inputs) != 1:
        kind = "a directory of .npy files" if af.kind == "dir" else "a CSV file"
        raise EdgecError(f"{what}: {kind} holds samples of one input; this model has "
                         f"{len(g.inputs)} (use an .npz with one array each)", where)
    if af.kind == "csv":
        name = g.inputs[0]
        t = g.tensors[name]
        rows = af.read_csv(t.size)
        label = f"{what}: the table"
        b = rows.reshape((rows.shape[0],) + tuple(t.shape))
        return [_fit_in(g, name, b, label, where, raw, allow_nan, notes, what)], {}
    if af.kind == "dir":
        name = g.inputs[0]
        parts = []
        for fname in af.names:
            label = f"{what}: file {_show(fname)}"
            b = _batch_in(af.read(fname), g, name, label, where)
            parts.append(_fit_in(g, name, b, label, where, raw, allow_nan, notes, what))
        return [np.concatenate(parts)], {}
    keys = af.names
    batches = []
    for i, name in enumerate(g.inputs):
        key = _key_for(g, i, af, what)
        label = f"{what}: array {_show(key)}"
        b = _batch_in(af.read(key), g, name, label, where)
        batches.append(_fit_in(g, name, b, label, where, raw, allow_nan, notes, what))
    arrays = {}
    if targets:
        for k in keys:
            if _is_target(k):
                arrays[k] = af.read(k)
    return batches, arrays


def _batch_in(a, g, name, label, where):
    try:
        return as_batch(a, g.tensors[name], label, _input_label(g, name))
    except EdgecError as e:
        raise EdgecError(str(e), where) from None


def _fit_in(g, name, b, label, where, raw, allow_nan, notes, what):
    try:
        return fit(g, name, b, label=label, raw=raw, allow_nan=allow_nan, notes=notes, what=what)
    except EdgecError as e:
        raise EdgecError(str(e), where) from None


def _targets(g: Graph, ds: Dataset, arrays: dict, n: int, what: str, where) -> None:
    lk = next((k for k in LABEL_KEYS if k in arrays), None)
    if lk is not None:
        lab = np.asarray(arrays[lk])
        if lab.ndim == 2 and lab.shape[1] > 1 and lab.dtype.kind == "f":
            lab = lab.argmax(axis=1)  # one-hot
        lab = lab.reshape(-1)
        if lab.shape[0] != n or lab.dtype.kind not in "iu":
            raise EdgecError(f"{what}: labels {_show(lk)} must be {n} integers "
                             f"(got shape {list(np.shape(arrays[lk]))}, dtype {lab.dtype})", where)
        ds.labels = lab.astype(np.int64)
    outs = []
    for j, name in enumerate(g.outputs):
        t = g.tensors[name]
        keys = [f"output{j}", f"output_{j}"] + (list(OUTPUT_KEYS) if len(g.outputs) == 1 else [])
        k = next((k for k in keys if k in arrays), None)
        if k is None:
            outs = None
            break
        label = f"{what}: reference outputs {_show(k)}"
        a = np.asarray(arrays[k])
        if a.dtype.kind not in "iuf":
            raise EdgecError(f"{label} have dtype {a.dtype}; reference outputs are numbers", where)
        b = as_batch(a, t, label, f"output {_show(t.origin if isinstance(t.origin, str) else name)}")
        if b.shape[0] != n:
            raise EdgecError(f"{label} hold {b.shape[0]} samples, the inputs {n}", where)
        if not np.isfinite(b.astype(np.float64)).all():
            raise EdgecError(f"{label} hold NaN or infinite values", where)
        outs.append(b.astype(np.float32))
    ds.ref_outputs = outs or None


def load_rows(g: Graph, source, what: str = "tree calibration",
              max_bytes: int | None = None) -> list[np.ndarray]:
    """Feature rows [R, F] per input (F = the input's last dimension) for tree-ensemble
    calibration: an array or arrays ([R, F], or samples of the input's shape), an
    ``.npz``/``.npy``/directory as for :func:`load`, or a ``.csv`` of rows (the first F
    numeric columns of each line; a header line and further columns, such as a label,
    ignored).  NaN (a missing value) is fine; what an input's type cannot hold is not."""
    where = None
    if isinstance(source, (str, os.PathLike)):
        with ArrayFile(source, what, max_bytes) as af:
            where = af.where
            if af.kind in ("dir", "csv") and len(g.inputs) != 1:
                raise EdgecError(f"{what}: {'a CSV file' if af.kind == 'csv' else 'a directory'} "
                                 f"holds the rows of one input; this model has {len(g.inputs)}", where)
            if af.kind == "csv":
                arrays = [af.read_csv(g.tensors[g.inputs[0]].shape[-1])]
                labels = [f"{what}: the table"]
            elif af.kind == "dir":
                arrays = [np.concatenate([_rows_of(af.read(f), g, g.inputs[0],
                                                   f"{what}: file {_show(f)}", where)
                                          for f in af.names])]
                labels = [f"{what}: the files"]
            else:
                keys = [_key_for(g, i, af, what) for i in range(len(g.inputs))]
                arrays = [af.read(k) for k in keys]
                labels = [f"{what}: array {_show(k)}" for k in keys]
    else:
        arrays = list(source) if isinstance(source, (list, tuple)) else [source]
        if len(arrays) != len(g.inputs):
            raise EdgecError(f"{what}: {len(arrays)} arrays for {len(g.inputs)} inputs")
        labels = [f"{what}: array {i}" for i in range(len(arrays))]
    out = []
    for name, a, label in zip(g.inputs, arrays, labels):
        rows = _rows_of(np.asarray(a), g, name, label, where)
        out.append(_fit_in(g, name, rows, label, where, False, True, None, what))
    if len({r.shape[0] for r in out}) > 1:
        raise EdgecError(f"{what}: the inputs have different numbers of rows "
                         f"({', '.join(str(r.shape[0]) for r in out)})", where)
    return out


def _key_for(g: Graph, i: int, af: ArrayFile, what: str) -> str:
    """The array of ``af`` that holds input ``i`` (see :func:`input_keys`)."""
    name = g.inputs[i]
    key = next((k for k in input_keys(g, i) if k in af.specs), None)
    if key is None:
        rest = [k for k in af.names if not _is_target(k)]
        if len(g.inputs) == 1 and len(rest) == 1:
            return rest[0]
        shown = ", ".join(_show(k) for k in sorted(af.names)[:20]) or "none"
        raise EdgecError(f"{what}: no array for {_input_label(g, name)} (arrays: {shown}; name "
                         "them after the inputs, input0, input1, ... or arr_0, arr_1, ..., or 'x' "
                         "for a single-input model)", af.where)
    return key


def _rows_of(a: np.ndarray, g: Graph, name: str, label: str, where) -> np.ndarray:
    t = g.tensors[name]
    F = t.shape[-1] if t.shape else 1
    if a.ndim == 2 and a.shape[1] == F:
        rows = a
    else:
        try:
            rows = as_batch(a, t, label, _input_label(g, name)).reshape(-1, F)
        except EdgecError:
            raise EdgecError(f"{label} has shape {list(a.shape)}, which does not fit "
                             f"{_input_label(g, name)} of shape {list(t.shape)} (expected rows "
                             f"[R, {F}] or samples {_want(tuple(t.shape))})", where) from None
    if rows.shape[0] == 0:
        raise EdgecError(f"{label} holds no rows", where)
    return rows


# --- making and encoding samples ---------------------------------------------------------

def random_samples(g: Graph, n: int, seed: int = 0) -> list:
    """``n`` random samples: floats uniform in [-1, 1], integers uniform over the
    type's range (within int16's), booleans."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n):
        s = []
        for name in g.inputs:
            t = g.tensors[name]
            if dtypes.is_float(t.dtype):
                s.append(rng.uniform(-1.0, 1.0, t.shape).astype(dtypes.np_dtype(t.dtype)))
            elif t.dtype == "bool":
                s.append(rng.integers(0, 2, t.shape).astype(bool))
            else:
                lo, hi = dtypes.int_range(t.dtype)
                lo, hi = max(lo, -(1 << 15)), min(hi, (1 << 15) - 1)
                s.append(rng.integers(lo, hi + 1, t.shape).astype(dtypes.np_dtype(t.dtype)))
        samples.append(s)
    return samples


def input_samples(g: Graph, n: int, seed: int = 0, source=None, *, what: str = "inputs",
                  raw: bool = False, notes: list | None = None, max_bytes: int | None = None) -> list:
    """The samples of ``verify`` / ``bench`` / the firmware's test vectors: those of
    ``source`` (a file or arrays, see :func:`load`), else ``n`` random ones."""
    if source is None:
        if raw:
            raise EdgecError("--raw-inputs describes an inputs file: give one")
        return random_samples(g, n, seed)
    ds = load(g, source, what, raw=raw, max_bytes=max_bytes)
    if notes is not None:
        for x in ds.notes:
            _note(notes, x)
    return ds.samples


def encode(g: Graph, samples, *, raw: bool = False, allow_nan: bool = True,
           notes: list | None = None, what: str = "inputs") -> list:
    """Samples (lists of per-input arrays) as ``g``'s inputs take them: quantized for
    int8 inputs, encoded as levels for ``--quantized-input`` trees, checked and cast
    otherwise (see :func:`fit`).  Samples already in the input's type pass unchanged."""
    samples = [list(s) for s in samples]
    if not samples:
        return samples
    for i, name in enumerate(g.inputs):
        t = g.tensors[name]
        label = f"{what}: input {i}"
        col = []
        for s in samples:
            c = np.asarray(s[i])
            if tuple(c.shape) != tuple(t.shape) and _squeezed(c.shape) != _squeezed(t.shape):
                raise EdgecError(f"{label}: a sample of shape {list(c.shape)} does not fit "
                                 f"{_input_label(g, name)} of shape {list(t.shape)}")
            col.append(c.reshape(t.shape))
        if all(c.dtype == dtypes.np_dtype(t.dtype) for c in col):
            for s, c in zip(samples, col):
                s[i] = c
            continue
        b = fit(g, name, np.stack(col), label=label, raw=raw, allow_nan=allow_nan, notes=notes,
                what=what)
        for s, x in zip(samples, b):
            s[i] = x
    return samples
