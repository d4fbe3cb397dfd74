"""Several models in one firmware.

* every symbol a bundle defines carries its name (static ones included), so two
  bundles link together and their symbols tell them apart;
* ``<name>_invoke_with_arena``: the model runs on the arena it is given, every layer
  (scratch buffers included), and with ``<NAME>_EXTERNAL_ARENA`` needs no arena of
  its own: models that never run at the same time share one buffer;
* firmware_examples/two_models: keyword spotting and a random forest in one Cortex-M4F
  firmware sharing one arena, built with its Makefile (both bundles' edgec.mk) and with
  CMake (both bundles added with add_subdirectory), run in QEMU, both models' outputs
  checked, and ``edgec size --bundle kws --bundle forest`` attributing each model's
  flash and RAM exactly."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import EXAMPLE_KWS, ROOT, have

from edgec.pipeline import Options, compile_full

EXAMPLE = ROOT / "firmware_examples" / "two_models"
FOREST = EXAMPLE / "model" / "forest.onnx"


def need(*tools):
    for t in tools:
        if not have(t):
            pytest.skip(f"{t} not installed (make deps-apt)")


def _env():
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def run(*cmd, cwd=None, timeout=900):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def nm_defined(obj, tool="nm"):
    """Names of the symbols an object defines (locals included), by binutils' nm."""
    out = subprocess.run([tool, str(obj)], capture_output=True, text=True, check=True).stdout
    return [p[2] for p in (ln.split() for ln in out.splitlines()) if len(p) == 3 and p[1] not in "Uuw"]


# ---- names -------------------------------------------------------------------------------

@pytest.mark.parametrize("model,name,extra", [
    (EXAMPLE_KWS, "kws", {"kernels": "dsp"}),         # DSP kernels: tables, scratch
    (ROOT / "models" / "mlperf_tiny" / "pretrainedResnet_quant.tflite", "ic", {"kernels": "dsp"}),
    (FOREST, "forest", {}),                            # a scaler and a tree ensemble
    (ROOT / "models" / "onnx" / "mnist-8.onnx", "model", {}),   # float; the default name
])
def test_every_symbol_of_a_bundle_carries_its_name(model, name, extra, tmp_path):
    need("gcc", "nm")
    b, _ = compile_full(str(model), Options(target="host", name=name, extra=extra))
    d = b.write(tmp_path / "b")
    src = (d / f"{name}.c").read_text()
    # no edgec_ identifier is left but the hooks the firmware provides
    left = set(re.findall(r"\bedgec_\w+", re.sub(r'"(?:\\.|[^"\\\n])*"', "", src)))
    assert left <= {"edgec_trace", "edgec_profile_begin", "edgec_profile_end"}, left
    obj = tmp_path / "m.o"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-c", str(d / f"{name}.c"),
                    "-I", str(d), "-o", str(obj)], check=True)
    names = [n for n in nm_defined(obj) if not n.startswith((".", "$"))]
    assert names and all(n.startswith(name + "_") for n in names), \
        [n for n in names if not n.startswith(name + "_")]
    assert any(re.match(rf"{name}_l\d+_", n) for n in names)
    assert all(rl["function"].startswith(f"{name}_l{rl['index']}_") for rl in b.report["layers"])


def test_class_labels_keep_their_text(tmp_path):
    """Strings are never renamed: a label spelled like an edgec symbol stays as it is."""
    from onnx import helper

    import tree_models
    from edgec.frontends.onnx import from_model
    rng = np.random.default_rng(3)
    A = tree_models.random_trees(rng, 3, 4, 3, 2)
    m = tree_models.make_model(A, "classifier", 4, 2, string_labels=True)
    for a in m.graph.node[0].attribute:
        if a.name == "classlabels_strings":
            a.CopyFrom(helper.make_attribute("classlabels_strings", [b"edgec_cat", b"edgec_l0_dog"]))
    b, _ = compile_full(from_model(m), Options(target="host", name="pets"))
    h = b.files["pets.h"]
    assert '"edgec_cat", "edgec_l0_dog"' in h and "pets_cat" not in h


# ---- one arena, passed by the caller ---------------------------------------------------------

ARENA_DRIVER = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "kws.h"

#ifdef OWN_SYMBOL
/* the arena kws_invoke() runs on (KWS_EXTERNAL_ARENA) */
uint8_t kws_arena[KWS_ARENA_SIZE] __attribute__((aligned(16)));
#endif
static int8_t in[KWS_INPUT0_ELEMENTS], ref[KWS_OUTPUT0_ELEMENTS], out[KWS_OUTPUT0_ELEMENTS];
static uint8_t buf[KWS_ARENA_SIZE + 32] __attribute__((aligned(16)));

int main(void)
{
  int i, untouched = 1, used = 0;
  for (i = 0; i < KWS_INPUT0_ELEMENTS; ++i) in[i] = (int8_t)(i * 37 + 11);
#ifdef OWN_SYMBOL
  printf("invoke %d\n", kws_invoke(in, ref));
  memset(kws_arena, 0xA5, sizeof kws_arena);
#else
  printf("invoke %d\n", kws_invoke(in, ref));   /* no kws_arena anywhere: -1 */
#endif
  memset(buf, 0x5A, sizeof buf);
  printf("with_arena %d\n", kws_invoke_with_arena(in, out, buf));
#ifdef OWN_SYMBOL
  for (i = 0; i < KWS_ARENA_SIZE; ++i) untouched &= kws_arena[i] == 0xA5;
  printf("same %d\n", memcmp(ref, out, sizeof out) == 0);
#endif
  for (i = 0; i < KWS_ARENA_SIZE; ++i) used += buf[i] != 0x5A;
  for (i = KWS_ARENA_SIZE; i < KWS_ARENA_SIZE + 32; ++i) untouched &= buf[i] == 0x5A;
  printf("untouched %d used %d\n", untouched, used);
  printf("misaligned %d null %d\n", kws_invoke_with_arena(in, out, buf + 8),
         kws_invoke_with_arena(in, out, (uint8_t*)0));
  return 0;
}
"""


def test_invoke_with_arena_uses_only_the_arena_it_is_given(tmp_path):
    """KWS with the DSP kernels' portable form (im2col scratch in the arena): on a
    caller's buffer the outputs equal those on the model's arena, which stays untouched
    (filled with a pattern that no layer overwrites), and nothing past ARENA_SIZE is
    written; without a `kws_arena` anywhere (weak reference) the firmware still links,
    kws_invoke() returns -1 and kws_invoke_with_arena() runs."""
    need("gcc")
    b, _ = compile_full(str(EXAMPLE_KWS), Options(target="host", name="kws", extra={"kernels": "dsp"}))
    assert any(L["scratch_bytes"] for L in b.report["layers"])
    d = b.write(tmp_path / "kws")
    src = (d / "kws.c").read_text()
    body = src[src.index("int kws_invoke_with_arena("):src.index("int kws_invoke(")]
    assert "EDGEC_ARENA" not in body and "kws_arena" not in body   # layers see only `arena`
    (tmp_path / "main.c").write_text(ARENA_DRIVER)
    for own in (True, False):
        exe = tmp_path / f"t{int(own)}"
        subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-DKWS_EXTERNAL_ARENA",
                        *(["-DOWN_SYMBOL"] if own else []), "-I", str(d), str(tmp_path / "main.c"),
                        str(d / "kws.c"), "-lm", "-o", str(exe)], check=True)
        r = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
        if own:
            assert "invoke 0\nwith_arena 0\nsame 1\n" in r, r
        else:
            assert "invoke -1\nwith_arena 0\n" in r and "kws_arena" not in nm_defined(exe)
        used = int(re.search(r"used (\d+)", r).group(1))
        assert "untouched 1" in r and used > b.report["arena_bytes"] // 2, r
        assert "misaligned -1 null -1" in r


# ---- the example: Makefile, CMake, QEMU, edgec size -----------------------------------------

def _size(elf, *bundles):
    args = [a for b in bundles for a in ("--bundle", b)]
    r = run(sys.executable, "-m", "edgec", "size", elf, *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _arm_nm_sizes(elf):
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    return [(p[3], int(p[1], 16)) for p in (ln.split() for ln in out.splitlines()) if len(p) == 4]


def _check_exact(d, elf, reports, shared):
    """Each model's flash and RAM is exactly its symbols' bytes (arm-none-eabi-nm); the
    models add up to the ELF's totals minus application, test data, C library, stack and
    padding."""
    assert [m["name"] for m in d["models"]] == ["kws", "forest"]
    assert d["models_shared"] == {"flash": 0, "ram": 0}
    fl, rm = d["flash"]["parts"], d["ram"]["parts"]
    assert sum(m["flash"]["total"] for m in d["models"]) == d["model_totals"]["flash"] == \
        d["flash"]["total"] - fl["app"] - fl["test_data"] - fl["libc"] - fl["unattributed"]
    assert sum(m["ram"]["total"] for m in d["models"]) == d["model_totals"]["ram"] == \
        d["ram"]["total"] - rm["app"] - rm["libc"] - rm["stack"] - rm["heap"] - rm["unattributed"]
    nm = _arm_nm_sizes(elf)
    for m in d["models"]:
        rep = reports[m["name"]]
        assert m["flash"]["total"] + m["ram"]["total"] == sum(sz for n, sz in nm if n.startswith(m["name"] + "_"))
        assert m["flash"]["weights"] == rep["weights_bytes"]
        assert m["layers"] == len(rep["layers"]) == len([L for L in d["layers"] if L["model"] == m["name"]])
        assert m["arena"]["planned_bytes"] == rep["arena_bytes"]
        assert m["ram"]["arena"] == (0 if shared else rep["arena_bytes"])
        assert all(s["model"] == m["name"] for s in d["symbols"] if s["name"].startswith(m["name"] + "_"))
    owners = {s["name"]: s for s in d["symbols"]}
    if shared:   # the application's one buffer, of the larger arena
        assert owners["shared_arena"]["owner"] == "app"
        assert owners["shared_arena"]["size"] == max(r["arena_bytes"] for r in reports.values())
        assert "kws_arena_store" not in owners and "forest_arena_store" not in owners
    else:
        assert owners["kws_arena_store"]["owner"] == owners["forest_arena_store"]["owner"] == "arena"


@pytest.mark.qemu
def test_two_models_example_make_and_cmake_in_qemu(tmp_path):
    need("arm-none-eabi-gcc", "arm-none-eabi-nm", "qemu-system-arm", "make")
    build = tmp_path / "build"
    edgec = f"{sys.executable} -m edgec"
    # 1. the Makefile: both bundles' edgec.mk, one arena shared, then each model on its own
    runs = {}
    for arenas in ("shared", "own"):
        r = run("make", "-C", EXAMPLE, "run", f"EDGEC={edgec}", f"BUILD={build}", f"ARENAS={arenas}")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert "EDGEC-RESULT PASS" in r.stdout
        assert len(re.findall(r"^kws +input \d: class \d+ +\(as expected\)$", r.stdout, re.M)) == 3
        assert len(re.findall(r"^forest row +\d: (mine|rock), \d+ per mille", r.stdout, re.M)) == 6
        runs[arenas] = r.stdout
    reports = {n: json.loads((build / n / "report.json").read_text()) for n in ("kws", "forest")}
    arena = max(r["arena_bytes"] for r in reports.values())
    assert f"one arena of {arena} bytes" in runs["shared"]
    assert f"two arenas of {sum(r['arena_bytes'] for r in reports.values())} bytes" in runs["own"]
    sizes = {}
    for arenas, elf in (("shared", build / "two_models.elf"), ("own", build / "two_models_own.elf")):
        d = _size(elf, build / "kws", build / "forest")
        _check_exact(d, elf, reports, arenas == "shared")
        sizes[arenas] = d
    # sharing saves the smaller arena, exactly
    assert sizes["own"]["ram"]["total"] - sizes["shared"]["ram"]["total"] == reports["forest"]["arena_bytes"]
    # the Makefile's size target: $(EDGEC_SIZE) passes both bundles
    r = run("make", "-C", EXAMPLE, "size", f"EDGEC={edgec}", f"BUILD={build}")
    assert r.returncode == 0, r.stderr
    assert "per model" in r.stdout and "all models" in r.stdout

    # 2. CMake: the same application, both bundles added with add_subdirectory
    need("cmake")
    cm = tmp_path / "cmake"
    exe = f"-DEDGEC_EXECUTABLE={sys.executable};-m;edgec"
    r = run("cmake", "-S", EXAMPLE, "-B", cm, f"-DBUNDLES={build}", exe)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("cmake", "--build", cm, "--target", "run")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "EDGEC-RESULT PASS" in r.stdout and "one arena of" in r.stdout
    elf = cm / "two_models.elf"
    _check_exact(_size(elf, build / "kws", build / "forest"), elf, reports, True)
    r = run("cmake", "--build", cm, "--target", "two_models.elf-size")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "per model" in r.stdout and "forest" in r.stdout and "kws" in r.stdout
    shutil.rmtree(cm)


def test_make_forest_script_matches_the_committed_vectors(tmp_path):
    """model/make_forest.py is how forest.onnx and forest_vectors.h were made: run again,
    its forest predicts the committed labels and probabilities for the committed rows."""
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    import onnxruntime as ort
    r = run(sys.executable, EXAMPLE / "model" / "make_forest.py", tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "forest_vectors.h").read_text() == (EXAMPLE / "forest_vectors.h").read_text()
    text = (EXAMPLE / "forest_vectors.h").read_text()
    rows = np.array([float(v) for v in re.findall(
        r"-?\d+\.?\d*(?:e-?\d+)?(?=f)", text[text.index("sonar_x"):text.index("sonar_label")])],
        np.float32).reshape(-1, 60)
    labels = [int(v) for v in re.search(r"sonar_label\[SONAR_ROWS\] = \{([^}]*)\}", text).group(1).split(",")]
    sess = ort.InferenceSession(str(FOREST), providers=["CPUExecutionProvider"])
    got = [int(sess.run(None, {"X": r_.reshape(1, 60)})[0][0]) for r_ in rows]
    assert got == labels and len(rows) == 6
