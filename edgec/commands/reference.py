"""Reference runtimes used by ``edgec verify`` and the tests.

* int8 TFLite models: the TFLite Micro interpreter (``tflite-micro`` from PyPI),
  which is what runs on microcontrollers (CMSIS-NN matches it bit for bit);
* float TFLite models: ai-edge-litert with the reference kernels (BUILTIN_REF);
* ONNX models: onnxruntime with graph optimizations off;
* Keras / SavedModel models: TensorFlow running the model itself (and, beside it,
  ai-edge-litert running the file TensorFlow's converter made of it).

Each runner returns the outputs per sample and, on request, every intermediate
tensor keyed by the source model's own tensor id (TFLite index, ONNX name).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..ir.errors import EdgecError
from ..target.capture import Fd2Capture as _Fd2Capture
# the tflite-micro interpreter's allocation probe lives with the rest of TFLM's handling
from ..target.tflm import tflm_try_allocate, tflm_try_allocate_isolated  # noqa: F401

TFLM_ARENA = 8 * 1024 * 1024


def kind_for(model_path: Path, g) -> str:
    fmt = g.meta.format
    if fmt == "tflite":
        ints = any(t.dtype in ("int8", "uint8", "int16") and t.quant is not None and not t.is_const
                   for t in g.tensors.values())
        return "tflm" if ints else "litert"
    if fmt == "onnx":
        return "onnxruntime"
    if fmt in ("keras", "savedmodel"):
        return "tensorflow"
    return "edgec"


def isolated(fn, *args, **kwargs):
    """Run ``fn`` in a forked child process and return its result: the TFLite Micro
    interpreter segfaults or aborts the whole process on some models (a -1 bias of
    DEPTHWISE_CONV_2D, an ADD rescale of 1 or more, int8 SOFTMAX rows of 512+ equal
    values).  A crash becomes an EdgecError; elsewhere than Linux, runs in-process."""
    import multiprocessing
    import pickle
    if not sys.platform.startswith("linux"):
        return fn(*args, **kwargs)
    ctx = multiprocessing.get_context("fork")
    rd, wr = ctx.Pipe(duplex=False)

    def child():
        try:
            res = ("ok", fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the parent
            res = ("error", e)
        try:
            wr.send_bytes(pickle.dumps(res))
        except Exception as e:  # noqa: BLE001 - an exception that does not pickle
            wr.send_bytes(pickle.dumps(("error", RuntimeError(str(e)))))
        wr.close()
    p = ctx.Process(target=child, daemon=True)
    p.start()
    wr.close()
    try:
        data = rd.recv_bytes()
    except EOFError:
        data = None
    p.join()
    if data is None:
        raise EdgecError(f"the reference runtime crashed on this model (exit {p.exitcode}); "
                         "nothing to compare with")
    status, value = pickle.loads(data)
    if status == "error":
        raise value
    return value


def run_tflm(model: Path | bytes, samples, intermediates: bool = False, arena_size: int = TFLM_ARENA):
    from tflite_micro import runtime
    cfg = runtime.InterpreterConfig.kPreserveAllTensors if intermediates else \
        runtime.InterpreterConfig.kAllocationRecording
    data = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    with _Fd2Capture():
        it = runtime.Interpreter.from_bytes(bytes(data), arena_size=arena_size,
                                            intrepreter_config=cfg)
    n_out = _tflite_count_outputs(data)
    outs, inters = [], []
    ntens = _tflite_tensor_count(data) if intermediates else 0
    for s in samples:
        for i, x in enumerate(s):
            it.set_input(np.asarray(x), i)
        it.invoke()
        outs.append([np.array(it.get_output(j)) for j in range(n_out)])
        if intermediates:
            d = {}
            for ti in range(ntens):
                try:
                    t = it.GetTensor(ti, 0)
                except Exception:  # noqa: BLE001 - constant or unallocated tensor
                    continue
                if t is not None and "tensor_data" in t:
                    d[ti] = np.array(t["tensor_data"])
            inters.append(d)
    return outs, (inters if intermediates else None)


def tflm_arena_used(model: Path | bytes, arena_size: int = TFLM_ARENA) -> int:
    """Bytes the TFLite Micro interpreter allocates for the model (host figure)."""
    import re
    from tflite_micro import runtime
    data = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    with _Fd2Capture() as cap:
        it = runtime.Interpreter.from_bytes(bytes(data), arena_size=arena_size,
                                            intrepreter_config=runtime.InterpreterConfig.kAllocationRecording)
        it.print_allocations()
    m = re.search(r"Arena allocation total (\d+) bytes", cap.text)
    if not m:
        raise EdgecError("the TFLite Micro interpreter did not report its arena use")
    return int(m.group(1))


def _tflite_count_outputs(data: bytes) -> int:
    from tflite.Model import Model
    return Model.GetRootAs(data, 0).Subgraphs(0).OutputsLength()


def _tflite_tensor_count(data: bytes) -> int:
    from tflite.Model import Model
    return Model.GetRootAs(data, 0).Subgraphs(0).TensorsLength()


def run_litert(model: Path | bytes, samples, intermediates: bool = False):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    src = dict(model_content=bytes(model)) if isinstance(model, (bytes, bytearray)) else \
        dict(model_path=str(model))
    it = Interpreter(**src, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                     experimental_preserve_all_tensors=intermediates)
    it.allocate_tensors()
    ins = it.get_input_details()
    outs_d = it.get_output_details()
    outs, inters = [], []
    for s in samples:
        for d, x in zip(ins, s):
            it.set_tensor(d["index"], np.asarray(x).astype(d["dtype"]).reshape(d["shape"]))
        it.invoke()
        outs.append([np.array(it.get_tensor(d["index"])) for d in outs_d])
        if intermediates:
            d = {}
            for td in it.get_tensor_details():
                try:
                    d[td["index"]] = np.array(it.get_tensor(td["index"]))
                except ValueError:
                    pass
            inters.append(d)
    return outs, (inters if intermediates else None)


def _tflite_signature(buf: bytes) -> tuple[dict[int, str], dict[int, str]]:
    """{tensor index: name} of the inputs and outputs of the converted file's first
    signature (empty where the converter wrote none)."""
    from tflite.Model import Model
    m = Model.GetRootAs(buf, 0)
    if not m.SignatureDefsLength():
        return {}, {}
    sd = m.SignatureDefs(0)
    ins = {sd.Inputs(i).TensorIndex(): sd.Inputs(i).Name().decode() for i in range(sd.InputsLength())}
    outs = {sd.Outputs(i).TensorIndex(): sd.Outputs(i).Name().decode() for i in range(sd.OutputsLength())}
    return ins, outs


def _by_name_or_position(wanted: list[str], given: list[str], what: str) -> list[int]:
    """For each of ``wanted`` (names from the converted file's signature, '' if none),
    its position in ``given`` (the TensorFlow model's own names); positions in order
    when the names do not all match."""
    if all(w in given for w in wanted) and len(set(wanted)) == len(wanted):
        return [given.index(w) for w in wanted]
    if len(wanted) != len(given):
        raise EdgecError(f"the converted model has {len(wanted)} {what}s, the TensorFlow model "
                         f"{len(given)}: cannot match them")
    return list(range(len(given)))


def run_tensorflow(model: Path, fmt: str, g, samples):
    """Outputs of the Keras model (``.keras`` / ``.h5``) or SavedModel itself, run by
    TensorFlow, for samples in the order of ``g``'s inputs (``g`` is edgec's import of
    the file TensorFlow's converter made: its tensors' ``origin`` are that file's tensor
    indices, matched with the model's inputs and outputs through the file's signature)."""
    from ..frontends.keras import _import_tf, _quiet
    tf = _import_tf()
    sig_in, sig_out = _tflite_signature(g.meta.tflite_flatbuffer)
    in_names = [sig_in.get(g.tensors[i].origin, "") for i in g.inputs]
    out_names = [sig_out.get(g.tensors[o].origin, "") for o in g.outputs]
    with _quiet():
        if fmt == "keras":
            import keras
            m = keras.models.load_model(str(model), compile=False)
            model_ins = [getattr(t, "name", f"input{k}").split(":")[0] for k, t in enumerate(m.inputs)]
            order = _by_name_or_position(in_names, model_ins, "input")
            n_out = len(m.outputs)
            out_order = _by_name_or_position(out_names, [f"output_{k}" for k in range(n_out)], "output")

            def call(xs):
                feed = [None] * len(model_ins)
                for k, pos in enumerate(order):
                    feed[pos] = tf.constant(xs[k])
                y = m(feed if len(feed) > 1 else feed[0], training=False)
                flat = tf.nest.flatten(y)
                return [np.asarray(flat[p]) for p in out_order]
        else:
            call = _savedmodel_runner(tf, model, in_names, out_names)
        return [call([np.asarray(x, np.float32) if np.asarray(x).dtype == np.float64 else np.asarray(x)
                      for x in s]) for s in samples]


def _savedmodel_runner(tf, model: Path, in_names: list[str], out_names: list[str]):
    """A function running the SavedModel's serving signature: TensorFlow 2's loader, or
    a TensorFlow 1 session where that loader cannot restore the file (SavedModels of
    older Keras versions, such as the MLPerf Tiny KWS model)."""
    try:
        fn = tf.saved_model.load(str(model)).signatures["serving_default"]
        keys = sorted(fn.structured_input_signature[1])
        outs = sorted(fn.structured_outputs)
        order = _by_name_or_position(in_names, keys, "input")
        out_order = _by_name_or_position(out_names, outs, "output")

        def call(xs):
            y = fn(**{keys[p]: tf.constant(xs[k]) for k, p in enumerate(order)})
            return [np.asarray(y[outs[p]]) for p in out_order]
        return call
    except EdgecError:
        raise
    except Exception:  # noqa: BLE001 - try the TensorFlow 1 loader
        pass
    graph = tf.Graph()
    sess = tf.compat.v1.Session(graph=graph)
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(model))
    sig = meta.signature_def["serving_default"]
    keys, outs = sorted(sig.inputs), sorted(sig.outputs)
    order = _by_name_or_position(in_names, keys, "input")
    out_order = _by_name_or_position(out_names, outs, "output")

    def call(xs):
        feed = {sig.inputs[keys[p]].name: xs[k] for k, p in enumerate(order)}
        res = sess.run([sig.outputs[outs[p]].name for p in out_order], feed)
        return [np.asarray(r) for r in res]
    return call


def _zipmap_labels(m) -> dict:
    """{graph output name: class labels} for outputs produced by ai.onnx.ml ZipMap."""
    from onnx import helper
    out = {}
    for n in m.graph.node:
        if n.op_type == "ZipMap" and n.output:
            labels = []
            for a in n.attribute:
                if a.name in ("classlabels_int64s", "classlabels_strings"):
                    labels = [v.decode() if isinstance(v, bytes) else v
                              for v in helper.get_attribute_value(a)]
            out[n.output[0]] = labels
    return out


def _maps_to_array(seq, labels) -> np.ndarray:
    """onnxruntime's ZipMap output (a list of {class: probability}) as the [N, C]
    probability tensor edgec computes, columns in the ZipMap's class order."""
    rows = []
    for d in seq:
        keys = labels if labels else list(d.keys())
        rows.append([d[k] for k in keys])
    return np.asarray(rows, np.float32)


def run_onnxruntime(model: Path | bytes, samples, input_names=None,
                    intermediates: dict | None = None):
    """``input_names``: the ONNX names of the sample's arrays, in order;
    ``intermediates``: {onnx tensor name: IR dtype} to expose as extra outputs."""
    import onnx
    import onnxruntime as ort
    from onnx import helper
    m = onnx.load_from_string(model) if isinstance(model, (bytes, bytearray)) else onnx.load(str(model))
    n_out = len(m.graph.output)
    extra = []
    if intermediates:
        existing = {o.name for o in m.graph.output} | {i.name for i in m.graph.input} | \
            {i.name for i in m.graph.initializer}
        # only what a node of the model computes (an importer's helper tensors are not there)
        produced = {o for n in m.graph.node for o in n.output if o}
        from ..ir import dtypes as _dt
        for name, dt in intermediates.items():
            if name in existing or name not in produced:
                continue
            elem = helper.np_dtype_to_tensor_dtype(np.dtype(_dt.np_dtype(dt)))
            m.graph.output.append(helper.make_tensor_value_info(name, elem, None))
            extra.append(name)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    # One thread: onnxruntime's tree ensembles sum per-thread partial scores in a
    # different order with several threads; one thread gives the sequential order.
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    in_names = list(input_names) if input_names else [i.name for i in sess.get_inputs()]
    zipmaps = _zipmap_labels(m)
    out_names = [o.name for o in m.graph.output]
    outs, inters = [], []
    for s in samples:
        res = sess.run(None, dict(zip(in_names, s)))
        outs.append([_maps_to_array(r, zipmaps.get(out_names[j])) if isinstance(r, list)
                     else np.asarray(r) for j, r in enumerate(res[:n_out])])
        if intermediates:
            inters.append({name: np.asarray(r) for name, r in zip(extra, res[n_out:])})
    return outs, (inters if intermediates else None)
