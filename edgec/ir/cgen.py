"""Helpers for writing C: literals, arrays, identifiers, comments.

Model-supplied strings never become C identifiers: identifiers are generated,
and model names appear only inside comments through :func:`comment_text`.
"""
from __future__ import annotations

import math
import re

import numpy as np

from . import dtypes
from .errors import EdgecError

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


# The one encoder of model-supplied text (names, descriptions, labels) in generated files.
# Kept verbatim: letters, digits, space and punctuation that means nothing inside a C
# comment or string literal and cannot start one (no '*', '/', '\\', '?', quotes, '#',
# '$', ';', backquote).  Every other byte of the UTF-8 text, control characters and line
# breaks included, becomes an escape of backslash + digits, so the result cannot contain
# a comment delimiter (`/*`, `*/`, `//`), a trigraph (`??`), a line break, a
# backslash-newline or a preprocessor directive, whatever the input.
SAFE_TEXT = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _-.,:=+@%^&|~!<>()[]{}'")


def encode_text(text, max_len: int = 120) -> str:
    """Model-supplied text as safe printable ASCII (see SAFE_TEXT): bounded to about
    ``max_len`` characters (a cut is marked ``...``), never cutting an escape."""
    data = str(text).encode("utf-8", "surrogateescape")
    out: list[str] = []
    size = 0
    for b in data:
        piece = chr(b) if b in SAFE_TEXT else f"\\x{b:02x}"
        if size + len(piece) > max_len:
            out.append("...")
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def comment_text(text, max_len: int = 120) -> str:
    """Text that is safe inside a /* */ or // comment (``encode_text``)."""
    return encode_text(text, max_len)


def c_string(text, max_len: int = 256) -> str:
    """A C string literal of model-supplied text (class labels): the bytes of the text
    in ``encode_text``'s safe set verbatim, the rest as three-digit octal escapes (which,
    unlike hexadecimal ones, never absorb a following character); bounded length."""
    data = str(text).encode("utf-8", "surrogateescape")[:max_len]
    return '"' + "".join(chr(b) if b in SAFE_TEXT else f"\\{b:03o}" for b in data) + '"'


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


def c_act_float(expr: str, act, ctype: str = "float") -> str:
    """C expression clamping ``expr`` to a fused float activation range ``(lo, hi)``
    (``None``: no activation; an infinite bound is no clamp on that side)."""
    if act is None:
        return expr
    lit = c_float if ctype == "float" else c_double
    lo, hi = act
    out = expr
    if lo != -math.inf:
        out = f"EDGEC_MAX({out}, {lit(lo)})"
    if hi != math.inf:
        out = f"EDGEC_MIN({out}, {lit(hi)})"
    return out


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


def _c_float_from_repr(r: str) -> str:
    """``c_float``'s text from numpy's shortest round-trip text of a finite float32
    (same digits, as ``str(np.float32)`` / ``astype(str)`` give them): ``-d.ddde[+-]xx``
    or positional, turned into c_float's layout (positional for decimal exponents -5..7,
    else ``d.ddde<exp>``) without formatting the value again."""
    sign = ""
    if r[0] == "-":
        sign, r = "-", r[1:]
    mant, _, ex = r.partition("e")
    ip, _, fp = mant.partition(".")
    digits = ip + fp
    point = len(ip) + (int(ex) if ex else 0)   # decimal point after this many digits
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    if not digits:
        return sign + "0.0f"
    e = point - 1
    if -5 <= e <= 7:
        if point <= 0:
            text = "0." + "0" * -point + digits
        elif point >= len(digits):
            text = digits + "0" * (point - len(digits)) + ".0"
        else:
            text = digits[:point] + "." + digits[point:]
    else:
        text = digits[0] + "." + (digits[1:] or "0") + f"e{e}"
    return sign + text + "f"


def float_literals(values) -> list[str]:
    """``c_float`` of every element, fast: numpy formats the shortest digits in C
    (``astype(str)``), Python only rearranges them; repeated values are formatted once."""
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    texts = flat.astype(str).tolist()
    cache: dict[str, str] = {}
    out = []
    for r in texts:
        c = cache.get(r)
        if c is None:
            c = c_float(np.float32(r)) if r in ("nan", "inf", "-inf", "-nan") else _c_float_from_repr(r)
            cache[r] = c
        out.append(c)
    return out


def array_body(data: np.ndarray, dtype: str, per_line: int | None = None) -> str:
    """The brace-enclosed initializer of a flat array."""
    flat = np.asarray(data).reshape(-1)
    if dtype == "float32":
        items = float_literals(flat)
        per_line = per_line or 8
    elif dtype == "float64":
        items = [c_double(v) for v in flat.astype(np.float64)]
        per_line = per_line or 6
    elif dtype == "bool":
        items = ["1" if v else "0" for v in flat]
        per_line = per_line or 32
    elif dtype in ("int8", "uint8", "int16", "uint16"):
        items = flat.astype(dtypes.np_dtype(dtype)).astype(str).tolist()
        per_line = per_line or 24
    else:
        npt = dtypes.np_dtype(dtype)
        items = [c_int(v, dtype) for v in flat.astype(npt).tolist()]
        per_line = per_line or (24 if dtypes.itemsize(dtype) <= 2 else 12)
    lines = []
    for i in range(0, len(items), per_line):
        lines.append("  " + ", ".join(items[i:i + per_line]) + ",")
    return "{\n" + "\n".join(lines) + "\n}"


# The hooks a firmware (edgec's harness, or the application) provides to every model
# in it: the generated C calls them, never defines them, so they keep their names.
HOOKS = frozenset({"edgec_trace", "edgec_profile_begin", "edgec_profile_end"})


def _identifiers(word: str) -> re.Pattern:
    """Comments (group 1), string and character literals (no group) and the
    identifiers beginning with ``word_`` (group 2).  The lookahead lets the regex
    engine skip everything else quickly (the numbers of constant arrays)."""
    w = re.escape(word)
    return re.compile(rf"""(?=[/"'{w[0]}])(?:(/\*.*?\*/|//[^\n]*)|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'"""
                      rf"|\b({w}_\w*))", re.S)


_EDGEC_IDENTIFIERS = _identifiers("edgec")
_EDGEC_WORD = re.compile(r"\bedgec_\w*")


def prefix_symbols(text: str, prefix: str) -> str:
    """Generated C with every ``edgec_*`` identifier renamed ``<prefix>_*``
    (``edgec_l3_conv`` -> ``kws_l3_conv``, ``edgec_lut_t`` -> ``kws_lut_t``), so that
    every symbol of a bundle, static or not, carries its name and several bundles
    can be linked into one firmware and told apart in its ELF (comments follow).
    String and character literals (class labels), the ``EDGEC_*`` macros and the
    :data:`HOOKS` are left alone.  A renamed identifier that the text already uses
    for something else (``--name`` chosen so that ``<prefix>_x`` exists) is an error."""
    if prefix == "edgec":
        return text
    renamed: set[str] = set()

    def word(m):
        name = m.group(0)
        return name if name in HOOKS else prefix + name[5:]

    def sub(m):
        comment, name = m.group(1), m.group(2)
        if comment is not None:
            return _EDGEC_WORD.sub(word, comment) if "edgec_" in comment else comment
        if name is None or name in HOOKS:
            return m.group(0)
        renamed.add(prefix + name[5:])
        return prefix + name[5:]

    out = _EDGEC_IDENTIFIERS.sub(sub, text)
    # (a quick look for the new names first among the words beginning with the prefix,
    # rarely found; one regex of all the names took 6 s to compile for 200,000 layers)
    if renamed and not renamed.isdisjoint(re.findall(rf"\b{re.escape(prefix)}_\w*", text)):
        taken = {m.group(2) for m in _identifiers(prefix).finditer(text) if m.group(2)}
        clash = sorted(taken & renamed)
        if clash:
            raise EdgecError(f"--name {prefix}: the generated C already uses {clash[0]} for something "
                             f"else than edgec's edgec{clash[0][len(prefix):]}; choose another name")
    return out
