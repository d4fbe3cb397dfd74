"""A small TFLite flatbuffer builder for tests (ai-edge-litert's schema object API).

    b = ModelBuilder()
    x = b.tensor([1, 8, 8, 3], "int8", scale=0.05, zero_point=-3)
    w = b.tensor([4, 3, 3, 3], "int8", data=..., scale=[...], zero_point=[0]*4)
    y = b.tensor([1, 8, 8, 4], "int8", scale=0.1, zero_point=2)
    b.op("CONV_2D", [x, w, bias], [y], "Conv2DOptions", padding=0, strideW=1, strideH=1)
    data = b.finish([x], [y])
"""
from __future__ import annotations

import numpy as np

_TYPES = {"float32": 0, "int32": 2, "uint8": 3, "int64": 4, "bool": 6, "int16": 7, "int8": 9}


class ModelBuilder:
    def __init__(self):
        from ai_edge_litert import schema_py_generated as s
        self.s = s
        self.tensors = []
        self.buffers = [s.BufferT()]
        self.ops = []
        self.codes: list[str] = []

    def tensor(self, shape, dtype: str, data=None, scale=None, zero_point=None, axis: int = 0,
               name: str | None = None) -> int:
        s = self.s
        t = s.TensorT()
        t.shape = list(shape)
        t.type = _TYPES[dtype]
        t.name = name or f"t{len(self.tensors)}"
        t.buffer = 0
        if data is not None:
            b = s.BufferT()
            b.data = list(np.asarray(data, dtype=dtype).reshape(-1).view(np.uint8).tobytes())
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = s.QuantizationParametersT()
            q.scale = list(np.atleast_1d(np.asarray(scale, np.float32)))
            q.zeroPoint = list(np.atleast_1d(np.asarray(zero_point if zero_point is not None else 0,
                                                        np.int64)))
            q.quantizedDimension = axis
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, name: str, inputs, outputs, options: str | None = None, **fields) -> None:
        s = self.s
        if name not in self.codes:
            self.codes.append(name)
        o = s.OperatorT()
        o.opcodeIndex = self.codes.index(name)
        o.inputs = list(inputs)
        o.outputs = list(outputs)
        if options:
            opt = getattr(s, options + "T")()
            for k, v in fields.items():
                setattr(opt, k, v)
            o.builtinOptionsType = getattr(s.BuiltinOptions, options)
            o.builtinOptions = opt
        self.ops.append(o)

    def finish(self, inputs, outputs) -> bytes:
        import flatbuffers
        s = self.s
        sg = s.SubGraphT()
        sg.tensors = self.tensors
        sg.inputs = list(inputs)
        sg.outputs = list(outputs)
        sg.operators = self.ops
        sg.name = "main"
        m = s.ModelT()
        m.version = 3
        m.description = "edgec test model"
        m.subgraphs = [sg]
        m.buffers = self.buffers
        codes = []
        for name in self.codes:
            c = s.OperatorCodeT()
            code = getattr(s.BuiltinOperator, name)
            c.builtinCode = code
            c.deprecatedBuiltinCode = min(code, 127)
            c.version = 1
            codes.append(c)
        m.operatorCodes = codes
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())
