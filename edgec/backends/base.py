"""The backend contract: what every backend (native C, TVM, TensorFlow Lite Micro) is given
and what it hands back.  The pipeline (:mod:`edgec.pipeline`) runs one of them on the
compiled graph and assembles the bundle and its report (``edgec-build/1``) from the
:class:`BackendResult`, the same way for all of them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..ir.graph import Graph, ModelSource
from ..target.targets import Target


@dataclass
class BackendOptions:
    target: Target
    prefix: str                              # the bundle's C identifier
    optimize: str = "speed"                  # speed: kernels per layer; size: shared kernels
    quantized: bool = False                  # edgec's quantizer ran (--quantize)
    source: ModelSource | None = None        # the model as read (tvm imports it itself)
    tflite: bytes | None = None              # the TFLite flatbuffer to bundle (tflm)
    # the settings of one backend (edgec.pipeline.Options' fields of the same names;
    # None: its default)
    kernels: str | None = None               # native: auto, plain, dsp, mve
    sparse: str | None = None                # native: weights storage (backends.sparse)
    trees: str | None = None                 # native: tree-ensemble code layout
    tvm_schedule: str | None = None          # tvm: local, ...
    tvm_codegen: str | None = None           # tvm: c or llvm
    tflm_check: bool = True                  # tflm: run the bundled model through TFLite Micro


@dataclass
class BackendResult:
    files: dict[str, str]                    # bundle files {name: text}, in order
    arena_size: int
    arena_lower_bound: int
    weights_bytes: int
    layers: list[dict]                       # the report's layers
    macs: int | None = None                  # None: the sum over the layers
    # the report describes edgec's graph (its passes, notes, I/O, sparse layers,
    # quantization); False: the bundled model file as it is (tflm)
    from_graph: bool = True
    inputs: list[dict] | None = None         # the report's I/O entries (None: from the graph)
    outputs: list[dict] | None = None
    io_bytes: int | None = None              # None: from the graph's I/O tensors
    info: dict | None = None                 # the report's section named after the backend
    objects: list[str] = field(default_factory=list)  # prebuilt objects every build links
    # the build files: templates under this folder, more variables for them, more products
    template_dir: str = ""
    build_vars: dict = field(default_factory=dict)
    products: tuple[str, ...] = ()
    firmware_files: dict[str, str] = field(default_factory=dict)  # beside the harness
    estimate_note: str = ("estimate before linking: constants plus arena and I/O buffers; "
                          "code size is known only after linking (edgec size)")
    tflite: bytes | None = None              # the bundled flatbuffer (tflm)


class Backend(Protocol):
    name: str

    def generate(self, graph: Graph | None, options: BackendOptions) -> BackendResult: ...
