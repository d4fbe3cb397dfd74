"""Sample files (edgec/data.py): one loader for --inputs, --test-inputs, --calibration,
--eval and --tree-calibration; hostile files refused with one line, fast and in bounded
memory; values never cast silently (float samples for an int8 input are quantized as
TFLite's QUANTIZE does, and the output says so)."""
import io
import json
import math
import os
import re
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgec import data
from edgec.ir.errors import EdgecError
from edgec.ir.graph import Graph, QuantParams

sys.path.insert(0, str(Path(__file__).parent))
from tflite_builder import ModelBuilder  # noqa: E402

SCALE, ZP = 0.25, -3          # the int8 input's quantization (a power of two: exact ties)
SHAPE = (1, 6, 4, 1)


def _int8_graph(shape=SHAPE) -> Graph:
    g = Graph("m")
    g.add_tensor("x", shape, "int8", quant=QuantParams(SCALE, ZP), origin="x")
    g.inputs = ["x"]
    return g


def _float_graph(shape=(1, 5)) -> Graph:
    g = Graph("f")
    g.add_tensor("x", shape, "float32", origin="x")
    g.inputs = ["x"]
    return g


def _one_line_error(r):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(lines) == 1 and lines[0].startswith("edgec: error: "), r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory):
    """An int8 TFLite model: input [1, 6, 4, 1] (scale 0.25, zero point -3) -> 1x1 CONV_2D."""
    rng = np.random.default_rng(1)
    b = ModelBuilder()
    x = b.tensor(list(SHAPE), "int8", scale=SCALE, zero_point=ZP, name="x")
    w = b.tensor([3, 1, 1, 1], "int8", data=rng.integers(-127, 127, (3, 1, 1, 1)),
                 scale=[0.02, 0.03, 0.01], zero_point=[0, 0, 0])
    bias = b.tensor([3], "int32", data=rng.integers(-100, 100, 3), scale=[0.005, 0.0075, 0.0025],
                    zero_point=[0, 0, 0])
    y = b.tensor([1, 6, 4, 3], "int8", scale=0.1, zero_point=2, name="y")
    b.op("CONV_2D", [x, w, bias], [y], "Conv2DOptions", padding=1, strideW=1, strideH=1,
         dilationWFactor=1, dilationHFactor=1)
    p = tmp_path_factory.mktemp("int8") / "m.tflite"
    p.write_bytes(b.finish([x], [y]))
    return p


def _quantize_model(n: int) -> bytes:
    """float [1, n] -> QUANTIZE -> int8 with the int8 input's parameters: TFLite's own rule."""
    b = ModelBuilder()
    x = b.tensor([1, n], "float32")
    y = b.tensor([1, n], "int8", scale=SCALE, zero_point=ZP)
    b.op("QUANTIZE", [x], [y])
    return b.finish([x], [y])


def _tie_values() -> np.ndarray:
    """Ties and near-ties of round(x / 0.25), saturation, zero and negative zero."""
    k = np.arange(-40, 40, dtype=np.float32)
    below = np.nextafter(np.float32(0.5), np.float32(0))        # 0.49999997
    v = np.concatenate([k + 0.5, k - 0.5, k + below, k - below, k + 0.25,
                        [0.0, -0.0, 1e6, -1e6, 5e8, -5e8]]).astype(np.float32)
    return (v * np.float32(SCALE)).astype(np.float32)


# --- float samples for an int8 input: quantized as TFLite does, and said so -----------------

def test_float_samples_are_quantized_like_tflite_quantize():
    """The levels are TFLite's: the TFLite Micro interpreter running a QUANTIZE op on the
    same floats gives the same int8 values, ties (half away from zero) and the float32
    near-tie 0.49999997 (where floor(v + 0.5) is 1) included; and std::round done by hand."""
    pytest.importorskip("tflite_micro")
    from edgec.commands import reference
    rng = np.random.default_rng(0)
    x = np.concatenate([_tie_values(), rng.normal(0, 20, 600).astype(np.float32)])
    notes = []
    got = data.quantize(x, SCALE, ZP, "int8")[0]
    samples = [[x.reshape(1, -1)]]
    ref, _ = reference.run_tflm(_quantize_model(x.size), samples)
    assert np.array_equal(got, np.asarray(ref[0][0]).reshape(-1))
    by_hand = [min(127, max(-128, int(math.copysign(math.floor(abs(float(np.float32(v) / np.float32(SCALE)))
                                                               + 0.5), v)) + ZP)) for v in x]
    assert got.tolist() == by_hand
    g = _int8_graph((1, x.size))
    enc = data.encode(g, samples, notes=notes)[0][0]
    assert enc.dtype == np.int8 and np.array_equal(enc.reshape(-1), got)
    assert len(notes) == 1 and "quantized" in notes[0] and "scale 0.25 and zero point -3" in notes[0]
    assert "clamped" in notes[0]
    # beyond int32, TFLite's QUANTIZE is undefined (the interpreter wraps -7.5e37 to 127)
    with pytest.raises(EdgecError, match="beyond int32.*undefined"):
        data.encode(g, [[np.full((1, x.size), -7.5e37, np.float32)]])


def test_round_half_away_is_exact():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49999997, -0.49999997, 8388609.0], np.float32)
    assert data.round_half_away(x.astype(np.float64)).tolist() == [1, 2, 3, -1, -2, 0, 0, 8388609]
    y = np.array([0.49999999999999994, -0.49999999999999994, 2.5, 4503599627370497.0])
    assert data.round_half_away(y).tolist() == [0, 0, 3, 4503599627370497.0]


def test_verify_quantizes_float_inputs_and_matches_tflite_micro(int8_model, tmp_path, edgec_cli):
    """`edgec verify int8.tflite --inputs floats.npz` (an x/y npz, the shape without its
    size-1 dimension): the samples are quantized with the input's scale and zero point,
    verify says so in one line, and edgec's C matches the TFLite Micro interpreter bit
    for bit on them."""
    pytest.importorskip("tflite_micro")
    from edgec.commands.verify import verify
    rng = np.random.default_rng(3)
    x = rng.normal(0, 10, (4, 6, 4)).astype(np.float32)
    ties = _tie_values()
    x.reshape(-1)[:] = np.resize(ties[np.random.default_rng(5).permutation(ties.size)], x.size)
    f = tmp_path / "floats.npz"
    np.savez(f, x=x, y=np.arange(4))
    res = verify(int8_model, inputs_file=str(f), compare_litert=False)
    assert res.ok and res.samples == 4 and res.outputs[0].exact
    assert any("float values quantized for input 'x' (int8) with its scale 0.25 and zero point -3"
               in n for n in res.notes), res.notes
    # the levels that ran are the quantized floats
    g = _int8_graph()
    ds = data.load(g, f)
    want = data.quantize(x, SCALE, ZP, "int8")[0].reshape((4,) + SHAPE)
    assert np.array_equal(np.stack([s[0] for s in ds.samples]), want)
    r = edgec_cli("verify", int8_model, "--inputs", f)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "bit-exact" in r.stdout and "PASS" in r.stdout
    assert len([ln for ln in r.stdout.splitlines() if "float values quantized" in ln]) == 1
    # --raw-inputs: the file holds levels; floats are refused, never cast
    line = _one_line_error(edgec_cli("verify", int8_model, "--inputs", f, "--raw-inputs"))
    assert "non-integer values" in line and "'x'" in line and "--raw-inputs" in line
    lv = tmp_path / "levels.npz"
    np.savez(lv, x=want.astype(np.float64))      # integral floats are levels
    r = edgec_cli("verify", int8_model, "--inputs", lv, "--raw-inputs")
    assert r.returncode == 0 and "quantized" not in r.stdout, r.stdout + r.stderr


def test_wrong_shape_names_both_shapes(int8_model, tmp_path, edgec_cli):
    """An array of the input's size in another shape was reshaped silently before."""
    f = tmp_path / "bad.npz"
    np.savez(f, x=np.zeros((3, 1, 24), np.float32))
    line = _one_line_error(edgec_cli("verify", int8_model, "--inputs", f))
    assert "[3, 1, 24]" in line and "[1, 6, 4, 1]" in line and "[N, 6, 4, 1]" in line


def test_test_inputs_accept_xy_npz_and_embed_quantized_levels(int8_model, tmp_path, edgec_cli):
    """build --firmware --test-inputs takes the same files as --eval (x/y): the embedded
    vectors are the quantized levels and the build says so; --raw-inputs refuses floats."""
    x = np.random.default_rng(4).normal(0, 5, (2, 6, 4, 1)).astype(np.float32)
    f = tmp_path / "xy.npz"
    np.savez(f, x=x, y=np.array([1, 0]))
    out = tmp_path / "b"
    r = edgec_cli("build", int8_model, "-t", "cortex-m4", "--firmware", "--test-inputs", f, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "float values quantized for input 'x'" in r.stdout
    rep = json.loads((out / "report.json").read_text())
    assert rep["test_inputs"]["source"] == "xy.npz" and rep["test_inputs"]["samples"] == 2
    assert "quantized" in rep["test_inputs"]["notes"][0]
    text = (out / "firmware" / "test_vectors.c").read_text()
    body = text.split("fw_test_in0")[1].split("{", 1)[1].split("}", 1)[0]
    got = [int(v) for v in body.replace("\n", " ").split(",") if v.strip()]
    assert got == data.quantize(x, SCALE, ZP, "int8")[0].reshape(-1).tolist()
    line = _one_line_error(edgec_cli("build", int8_model, "-t", "cortex-m4", "--firmware",
                                     "--test-inputs", f, "--raw-inputs", "-o", tmp_path / "c"))
    assert "non-integer values" in line and not (tmp_path / "c").exists()
    line = _one_line_error(edgec_cli("build", int8_model, "--raw-inputs", "-o", tmp_path / "c"))
    assert "--raw-inputs describes a --test-inputs file" in line


def test_positional_and_named_arrays(tmp_path):
    g = Graph("two")
    g.add_tensor("a", (1, 3), "float32", origin="in_a")
    g.add_tensor("b", (2,), "int8", quant=QuantParams(0.5, 0), origin="in_b")
    g.inputs = ["a", "b"]
    for keys in (("in_a", "in_b"), ("arr_0", "arr_1"), ("input0", "input1"), ("input_0", "b")):
        p = _npz_with(tmp_path, f"{keys[0]}.npz", **{keys[0]: np.ones((2, 3), np.float32),
                                                      keys[1]: np.array([[1, 2], [3, 4]], np.int8),
                                                      "y": np.zeros(2, np.int64)})
        ds = data.load(g, p)
        assert len(ds) == 2 and ds.samples[1][1].tolist() == [3, 4] and ds.samples[0][0].dtype == np.float32


# --- values refused for an int8 input ------------------------------------------------------

@pytest.mark.parametrize("arr, message", [
    (np.full((2, 6, 4), np.nan, np.float32), "NaN or infinite"),
    (np.full((2, 6, 4), np.inf, np.float32), "NaN or infinite"),
    (np.full((2, 6, 4), 1e300), "beyond float32's range"),
    (np.zeros((2, 6, 4), np.complex64), "complex"),
    (np.zeros((2, 6, 4), bool), "booleans"),
    (np.zeros((2, 6, 4), "datetime64[s]"), "dates/times"),
    (np.full((2, 6, 4), 200, np.int16), "outside int8's range"),
    (np.full((2, 6, 4), -129, np.int64), "outside int8's range"),
])
def test_values_an_int8_input_cannot_take_are_refused(tmp_path, arr, message):
    f = tmp_path / "v.npz"
    np.savez(f, x=arr)
    with pytest.raises(EdgecError, match=re.escape(message)) as e:
        data.load(_int8_graph(), f)
    assert "\n" not in str(e.value) and "'x'" in str(e.value)


def test_raw_levels_and_integers_in_range_pass_unchanged(tmp_path):
    g = _int8_graph()
    lv = np.concatenate([np.arange(-128, -104), np.arange(104, 128)]).reshape(2, 6, 4)
    np.savez(tmp_path / "i.npz", x=lv)
    ds = data.load(g, tmp_path / "i.npz")
    assert ds.samples[0][0].dtype == np.int8 and ds.samples[1][0].reshape(-1).tolist() == lv[1].reshape(-1).tolist()
    assert not ds.notes
    np.savez(tmp_path / "r.npz", x=np.full((1, 6, 4), 7.5))
    with pytest.raises(EdgecError, match="non-integer"):
        data.load(g, tmp_path / "r.npz", raw=True)
    np.savez(tmp_path / "n.npz", x=np.full((1, 6, 4), np.nan))
    with pytest.raises(EdgecError, match="NaN or infinite"):
        data.load(g, tmp_path / "n.npz", raw=True)


def test_calibration_refuses_nan_and_int_for_float_and_takes_float64(tmp_path):
    g = _float_graph()
    np.savez(tmp_path / "ok.npz", x=np.ones((3, 5)))
    ds = data.load(g, tmp_path / "ok.npz", "calibration", allow_nan=False)
    assert ds.samples[0][0].dtype == np.float32
    np.savez(tmp_path / "nan.npz", x=np.full((3, 5), np.nan, np.float32))
    with pytest.raises(EdgecError, match="NaN or infinite"):
        data.load(g, tmp_path / "nan.npz", "calibration", allow_nan=False)
    assert np.isnan(data.load(g, tmp_path / "nan.npz").samples[0][0]).all()   # verify inputs may hold NaN
    np.savez(tmp_path / "big.npz", x=np.full((3, 5), 1e300))
    with pytest.raises(EdgecError, match="beyond float32"):
        data.load(g, tmp_path / "big.npz")
    np.savez(tmp_path / "int.npz", x=np.ones((3, 5), np.int32))
    with pytest.raises(EdgecError, match="astype"):
        data.load(g, tmp_path / "int.npz")


# --- hostile files -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory):
    """A real zip bomb: an .npz whose one member (zeros: a valid float32 array) inflates to
    320 MiB from about 1.4 MB, built with zipfile (nothing large committed)."""
    p = tmp_path_factory.mktemp("bomb") / "bomb.npz"
    n = 320 << 20
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("x.npy", "w", force_zip64=True) as f:
            hdr = io.BytesIO()
            np.lib.format.write_array_header_1_0(hdr, {"descr": "<f4", "fortran_order": False,
                                                       "shape": (1, n // 4)})
            f.write(hdr.getvalue())
            chunk = bytes(1 << 24)
            for _ in range(n >> 24):
                f.write(chunk)
    assert p.stat().st_size < 2 << 20
    return p


def test_zip_bomb_is_refused_before_decompressing(zip_bomb):
    g = _float_graph((1, (320 << 20) // 4))
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(EdgecError) as e:
            data.load(g, zip_bomb)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(e.value)
    assert "member 'x.npy' decompresses to 335,544,448 bytes" in msg, msg
    assert "over the limit data_bytes=268,435,456 (256 MiB" in msg and "--limit data_bytes=N" in msg
    assert seconds < 0.5 and peak < 4 << 20, (seconds, peak)
    # the caller's limit
    with pytest.raises(EdgecError, match=r"data_bytes=1,024 \(1 KiB"):
        data.load(_float_graph(), zip_bomb, max_bytes=1024)


def test_zip_bomb_and_fifo_on_the_command_line(zip_bomb, int8_model, tmp_path, edgec_cli):
    t0 = time.perf_counter()
    line = _one_line_error(edgec_cli("verify", int8_model, "--inputs", zip_bomb, timeout=60))
    assert "over the limit data_bytes" in line and time.perf_counter() - t0 < 30
    # a calibration directory holding a FIFO named *.npy hung the build before
    d = tmp_path / "cal"
    d.mkdir()
    np.save(d / "a.npy", np.zeros((2, 5), np.float32))
    os.mkfifo(d / "b.npy")
    line = _one_line_error(edgec_cli("verify", int8_model, "--inputs", d / "b.npy", timeout=60))
    assert "a FIFO, not a regular file" in line
    line = _one_line_error(edgec_cli("verify", int8_model, "--inputs", d, timeout=60))
    assert "b.npy" in line and "FIFO" in line


def test_non_regular_files_are_refused_and_symlinks_followed(tmp_path):
    g = _float_graph()
    d = tmp_path / "cal"
    d.mkdir()
    np.save(tmp_path / "real.npy", np.ones((3, 5), np.float32))
    os.symlink(tmp_path / "real.npy", d / "a.npy")
    np.save(d / "b.npy", np.ones((2, 5), np.float32))
    assert len(data.load(g, d)) == 5
    assert len(data.load(g, d / "a.npy")) == 3
    os.mkfifo(d / "c.npy")
    t0 = time.perf_counter()
    with pytest.raises(EdgecError, match="c.npy: inputs: a FIFO, not a regular file"):
        data.load(g, d)
    assert time.perf_counter() - t0 < 1
    for dev in ("/dev/null", "/dev/zero"):
        with pytest.raises(EdgecError, match="character device, not a regular file"):
            data.load(g, dev)
    with pytest.raises(EdgecError, match="no such file"):
        data.load(g, tmp_path / "missing.npz")


def _npz_with(tmp_path, name, **arrays) -> Path:
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


@pytest.mark.parametrize("member, message", [
    (np.array([1, "a", None], dtype=object), "holds Python objects"),
    (np.float32(3.0), "is 0-d"),
    (np.array(["ab", "c"]), "holds strings"),
    (np.array([b"ab", b"c"]), "holds bytes"),
    (np.zeros(3, [("a", "<f4"), ("b", "<i4")]), "structured dtype"),
])
def test_members_edgec_never_reads_are_refused(tmp_path, member, message):
    p = tmp_path / "m.npz"
    with zipfile.ZipFile(p, "w") as z:       # np.savez refuses nothing; write object arrays too
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.asarray(member), allow_pickle=True)
        z.writestr("weird.npy", buf.getvalue())
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.ones((2, 5), np.float32))
        z.writestr("x.npy", buf.getvalue())
    with pytest.raises(EdgecError, match=re.escape(message)) as e:
        data.load(_float_graph(), p)
    assert "member 'weird.npy'" in str(e.value) and "\n" not in str(e.value)


def test_corrupt_members_are_one_line(tmp_path):
    g = _float_graph()
    good = _npz_with(tmp_path, "good.npz", x=np.ones((3, 5), np.float32))
    raw = bytearray(good.read_bytes())
    i = raw.index(b"\x93NUMPY")
    hlen = raw.index(b"\n", i) + 1
    raw[hlen + 8] ^= 0xFF                   # a data byte: the CRC fails
    (tmp_path / "crc.npz").write_bytes(bytes(raw))
    with pytest.raises(EdgecError, match="member 'x.npy' is .*Bad CRC"):
        data.load(g, tmp_path / "crc.npz")
    (tmp_path / "trunc.npz").write_bytes(good.read_bytes()[:-40])
    with pytest.raises(EdgecError, match="not a valid .npz"):
        data.load(g, tmp_path / "trunc.npz")
    # a header describing more data than the member holds (a lying shape)
    p = tmp_path / "lie.npz"
    with zipfile.ZipFile(p, "w") as z:
        hdr = io.BytesIO()
        np.lib.format.write_array_header_1_0(hdr, {"descr": "<f4", "fortran_order": False,
                                                   "shape": (3, 5)})
        z.writestr("x.npy", hdr.getvalue() + bytes(8))
    with pytest.raises(EdgecError, match="its header describes"):
        data.load(g, p)
    with zipfile.ZipFile(p, "w") as z:
        hdr = io.BytesIO()
        np.lib.format.write_array_header_1_0(hdr, {"descr": "<f4", "fortran_order": False,
                                                   "shape": (1 << 40, 5)})
        z.writestr("x.npy", hdr.getvalue() + bytes(8))
    with pytest.raises(EdgecError, match="over the limit data_bytes"):
        data.load(g, p)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(EdgecError, match="not a valid .npz"):
        data.load(g, tmp_path / "junk.npz")
    (tmp_path / "text.npz").write_bytes(b"hello")
    with pytest.raises(EdgecError, match="not an .npz, .npy or .csv"):
        data.load(g, tmp_path / "text.npz")


def test_hostile_member_names_stay_on_one_line(tmp_path):
    p = tmp_path / "n.npz"
    with zipfile.ZipFile(p, "w") as z:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.array(["s"]))
        z.writestr("evil\n\x1b[31mname\u202e.npy", buf.getvalue())
    with pytest.raises(EdgecError) as e:
        data.load(_float_graph(), p)
    assert "\n" not in str(e.value) and "\x1b" not in str(e.value) and "\u202e" not in str(e.value)


def test_too_many_members_are_refused_before_parsing(tmp_path):
    p = tmp_path / "many.npz"
    with zipfile.ZipFile(p, "w") as z:
        for i in range(data.MAX_MEMBERS + 1):
            z.writestr(f"a{i}.npy", b"")
    with pytest.raises(EdgecError, match="zip directory is too large"):
        data.load(_float_graph(), p)


def test_zero_samples_and_rows_are_refused(tmp_path):
    g = _float_graph()
    with pytest.raises(EdgecError, match="holds no samples"):
        data.load(g, _npz_with(tmp_path, "e.npz", x=np.zeros((0, 5), np.float32)), "calibration")
    with pytest.raises(EdgecError, match="holds no rows"):
        data.load_rows(g, _npz_with(tmp_path, "r.npz", x=np.zeros((0, 5), np.float32)))
    (tmp_path / "h.csv").write_text("a,b,c,d,e\n")
    with pytest.raises(EdgecError, match="no rows"):
        data.load_rows(g, tmp_path / "h.csv")
    with pytest.raises(EdgecError, match="no .npy files"):
        (tmp_path / "empty").mkdir()
        data.load(g, tmp_path / "empty")


def test_the_data_bytes_budget(tmp_path, int8_model, edgec_cli):
    """The limit is edgec.ir.limits' data_bytes (--limit data_bytes=N on the command line)."""
    from edgec.ir import limits
    p = _npz_with(tmp_path, "x.npz", x=np.ones((100, 5), np.float32))
    with limits.using(limits.parse(["data_bytes=1K"])):
        with pytest.raises(EdgecError, match=r"over the limit data_bytes=1,024 \(1 KiB"):
            data.load(_float_graph(), p)
    assert len(data.load(_float_graph(), p)) == 100
    q = _npz_with(tmp_path, "q.npz", x=np.zeros((40, 6, 4), np.float32))
    line = _one_line_error(edgec_cli("verify", int8_model, "--inputs", q, "--limit", "data_bytes=2K"))
    assert "3,840 bytes of samples, over the limit data_bytes=2,048" in line


# --- CSV -----------------------------------------------------------------------------------

def test_csv_rows_and_samples(tmp_path):
    g = _float_graph()
    (tmp_path / "t.csv").write_text("f1,f2,f3,f4,f5,label\n1,2,3,4,5,R\n6,7,8,9,10,M\n\n")
    rows = data.load_rows(g, tmp_path / "t.csv")[0]
    assert rows.tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]] and rows.dtype == np.float32
    ds = data.load(g, tmp_path / "t.csv")
    assert len(ds) == 2 and ds.samples[1][0].shape == (1, 5)
    (tmp_path / "s.csv").write_text("1;2;3;4;5\n6;7;8;9;nan\n")
    assert np.isnan(data.load_rows(g, tmp_path / "s.csv")[0][1, 4])     # a missing feature
    (tmp_path / "bad.csv").write_text("1,2,3,4,5\n6,7,x,9,10\n")
    with pytest.raises(EdgecError, match="not a table of at least 5 numbers per line.*'x'"):
        data.load_rows(g, tmp_path / "bad.csv")
    (tmp_path / "short.csv").write_text("1,2,3\n")
    with pytest.raises(EdgecError, match="at least 5 numbers"):
        data.load_rows(g, tmp_path / "short.csv")
    (tmp_path / "huge.csv").write_text("1e300,1,1,1,1\n")
    with pytest.raises(EdgecError, match="beyond float32"):
        data.load_rows(g, tmp_path / "huge.csv")
    (tmp_path / "big.csv").write_text("1,2,3,4,5\n" * 200)
    with pytest.raises(EdgecError, match="limit"):
        data.load_rows(g, tmp_path / "big.csv", max_bytes=1000)


# --- tree ensembles: --tree-calibration and --quantized-input -------------------------------

def test_tree_rows_and_levels_follow_the_same_rules(tmp_path):
    """--tree-calibration rows of an integer input: non-integer values refused, not
    truncated; the levels of a --quantized-input model: float features encoded (NaN is the
    missing level), integer levels out of range, complex and 1e300 refused."""
    gi = Graph("t")
    gi.add_tensor("X", (1, 3), "int64", origin="X")
    gi.inputs = ["X"]
    with pytest.raises(EdgecError, match="non-integer values"):
        data.load_rows(gi, np.array([[1.5, 2, 3]]))
    assert data.load_rows(gi, np.array([[1.0, 2, 3]]))[0].dtype == np.int64
    gq = Graph("q")
    gq.add_tensor("X", (1, 3), "uint8", origin="X")
    gq.inputs = ["X"]
    gq.meta.input_encoding = {"X": {"bits": 8, "top": 254, "nan": 255, "lo": [0.0, 0.0, -1.0],
                                       "inv": [10.0, 1.0, 2.0]}}
    notes = []
    s = data.encode(gq, [[np.array([[0.44, np.nan, 1e30]], np.float32)]], notes=notes)[0][0]
    assert s.dtype == np.uint8 and s.tolist() == [[4, 255, 254]]
    assert "8-bit levels" in notes[0] and "NaN -> 255" in notes[0]
    assert data.encode(gq, [[np.array([[0, 7, 255]], np.int64)]])[0][0].tolist() == [[0, 7, 255]]
    for bad, msg in ((np.array([[0, 7, 256]]), "outside uint8's range"),
                     (np.array([[-1, 7, 2]]), "outside uint8's range"),
                     (np.array([[1e300, 0, 0]]), "beyond float32"),
                     (np.array([[1j, 0, 0]]), "complex")):
        with pytest.raises(EdgecError, match=msg):
            data.encode(gq, [[bad]])
    with pytest.raises(EdgecError, match="non-integer"):
        data.encode(gq, [[np.array([[0.5, 1, 2]])]], raw=True)


def test_tree_calibration_on_the_command_line(tmp_path, edgec_cli):
    """--tree-calibration goes through the same loader: a bad cell is one line naming it,
    a good table (header, label column) builds."""
    import onnx

    from tree_models import make_model, random_trees
    rng = np.random.default_rng(2)
    m = make_model(random_trees(rng, 3, 3, 3, 2), "classifier", 3, 2)
    p = tmp_path / "forest.onnx"
    onnx.save(m, str(p))
    (tmp_path / "bad.csv").write_text("a,b,c,label\n0.1,0.2,0.3,R\n0.4,oops,0.6,M\n")
    line = _one_line_error(edgec_cli("build", p, "-t", "host", "--tree-features", "int8",
                                     "--tree-calibration", tmp_path / "bad.csv", "-o", tmp_path / "o"))
    assert "bad.csv: tree calibration: not a table" in line and "'oops'" in line
    assert not (tmp_path / "o").exists()
    (tmp_path / "ok.csv").write_text("a,b,c,label\n" + "".join(
        f"{a:.3f},{b:.3f},{c:.3f},R\n" for a, b, c in rng.normal(size=(40, 3))))
    r = edgec_cli("build", p, "-t", "host", "--tree-features", "int8", "--tree-calibration",
                  tmp_path / "ok.csv", "-o", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    fq = next(L["trees"]["feature_quantization"] for L in rep["layers"] if L.get("trees"))
    assert fq["calibration_rows"] == 40
