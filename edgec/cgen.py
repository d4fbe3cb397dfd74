"""Helpers for writing C: literals, arrays, identifiers, comments.

Model-supplied strings never become C identifiers: identifiers are generated,
and model names appear only inside comments through :func:`comment_text`.
"""
from __future__ import annotations

import math
import re

import numpy as np

from . import dtypes

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double",
    "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
    "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
    "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "_Bool",
    "_Complex", "_Imaginary", "main",
}


def c_identifier(name: str, default: str = "model", max_len: int = 32) -> str:
    """A safe C identifier derived from a user-supplied name (for prefixes)."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", name or "")[:max_len].strip("_")
    if not s:
        s = default
    if s[0].isdigit():
        s = "m_" + s
    if s in _C_KEYWORDS or s.startswith("__"):
        s = "m_" + s.lstrip("_")
    assert _IDENT.match(s)
    return s


def comment_text(text: str, max_len: int = 120) -> str:
    """Text that is safe inside a /* */ comment: printable ASCII only, no comment
    delimiters, no line breaks, no trigraphs or line continuations, bounded."""
    s = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(text))
    s = s.replace("*/", "*_/").replace("/*", "/_*").replace("??", "?_?").replace("\\", "/")
    if len(s) > max_len:
        s = s[: max_len - 3] + "..."
    return s


def c_string(text: str, max_len: int = 256) -> str:
    """A C string literal for a model-supplied string (class labels): printable ASCII
    but quotes, backslashes and '?' verbatim, everything else (UTF-8 bytes included) as
    octal escapes; bounded length."""
    out = []
    for b in str(text).encode("utf-8")[:max_len]:
        ch = chr(b)
        if 32 <= b < 127 and ch not in '"\\?':
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def c_float(x: float) -> str:
    """A float32 literal that parses back to exactly the same value."""
    x = np.float32(x)
    if np.isnan(x):
        return "NAN"
    if np.isinf(x):
        return "INFINITY" if x > 0 else "(-INFINITY)"
    s = np.format_float_scientific(x, unique=True, trim="-")
    m, e = s.split("e")
    e = int(e)
    if -5 <= e <= 7:
        s = np.format_float_positional(x, unique=True, trim="-")
        if "." not in s:
            s += ".0"
    else:
        if "." not in m:
            m += ".0"
        s = f"{m}e{e}"
    return s + "f"


def c_double(x: float) -> str:
    x = float(x)
    if math.isnan(x):
        return "((double)NAN)"
    if math.isinf(x):
        return "((double)INFINITY)" if x > 0 else "((double)-INFINITY)"
    r = repr(x)
    if "." not in r and "e" not in r:
        r += ".0"
    return r


def c_int(v: int, dtype: str = "int32") -> str:
    v = int(v)
    if dtype in ("int64",):
        if v == -(1 << 63):
            return "INT64_MIN"
        return f"INT64_C({v})"
    if dtype in ("uint64",):
        return f"UINT64_C({v})"
    if dtype in ("uint32",):
        return f"{v}u"
    if v == -(1 << 31):
        return "INT32_MIN"
    return str(v)


def c_literal(v, dtype: str) -> str:
    if dtype == "float32":
        return c_float(v)
    if dtype == "float64":
        return c_double(v)
    if dtype == "bool":
        return "1" if v else "0"
    return c_int(v, dtype)


def array_body(data: np.ndarray, dtype: str, per_line: int | None = None) -> str:
    """The brace-enclosed initializer of a flat array."""
    flat = np.asarray(data).reshape(-1)
    if dtype == "float32":
        items = [c_float(v) for v in flat.astype(np.float32)]
        per_line = per_line or 8
    elif dtype == "float64":
        items = [c_double(v) for v in flat.astype(np.float64)]
        per_line = per_line or 6
    elif dtype == "bool":
        items = ["1" if v else "0" for v in flat]
        per_line = per_line or 32
    else:
        npt = dtypes.np_dtype(dtype)
        items = [c_int(v, dtype) for v in flat.astype(npt).tolist()]
        per_line = per_line or (24 if dtypes.itemsize(dtype) <= 2 else 12)
    lines = []
    for i in range(0, len(items), per_line):
        lines.append("  " + ", ".join(items[i:i + per_line]) + ",")
    return "{\n" + "\n".join(lines) + "\n}"
