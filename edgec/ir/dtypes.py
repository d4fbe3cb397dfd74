"""Element types of the IR and their C and numpy counterparts."""
from __future__ import annotations

import numpy as np

from .errors import EdgecError

# IR dtype name -> (numpy dtype, C type, bytes per element)
_TABLE = {
    "float32": (np.float32, "float", 4),
    "float64": (np.float64, "double", 8),
    "int8": (np.int8, "int8_t", 1),
    "uint8": (np.uint8, "uint8_t", 1),
    "int16": (np.int16, "int16_t", 2),
    "uint16": (np.uint16, "uint16_t", 2),
    "int32": (np.int32, "int32_t", 4),
    "uint32": (np.uint32, "uint32_t", 4),
    "int64": (np.int64, "int64_t", 8),
    "uint64": (np.uint64, "uint64_t", 8),
    "bool": (np.bool_, "uint8_t", 1),
}

DTYPES = tuple(_TABLE)
FLOAT_TYPES = ("float32", "float64")
INT_TYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")
SIGNED_INT_TYPES = ("int8", "int16", "int32", "int64")


def check(dtype: str) -> str:
    if dtype not in _TABLE:
        raise EdgecError(f"unsupported element type {dtype!r}")
    return dtype


def np_dtype(dtype: str):
    return _TABLE[check(dtype)][0]


def c_type(dtype: str) -> str:
    return _TABLE[check(dtype)][1]


def itemsize(dtype: str) -> int:
    return _TABLE[check(dtype)][2]


def from_numpy(dt) -> str:
    dt = np.dtype(dt)
    for name, (npt, _, _) in _TABLE.items():
        if np.dtype(npt) == dt:
            return name
    raise EdgecError(f"unsupported element type {dt}")


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_TYPES


def int_range(dtype: str) -> tuple[int, int]:
    info = np.iinfo(np_dtype(dtype))
    return int(info.min), int(info.max)
