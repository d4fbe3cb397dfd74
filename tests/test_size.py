"""Size reports and budget checks (`edgec size`, `edgec check`) on real firmware.

The firmware ELFs are the ones users get: `edgec build --firmware` and the
bundle's own `make firmware` (arm-none-eabi-gcc, newlib-nano).  Figures are
compared with arm-none-eabi-size and arm-none-eabi-nm, run here."""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from conftest import EXAMPLE_KWS, ROOT, have, shared_model

INT8 = ["kws_ref_model.tflite", "vww_96_int8.tflite", "pretrainedResnet_quant.tflite",
        "ad01_int8.tflite"]
CSIZE = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4,
         "float": 4, "int64_t": 8, "double": 8}
NON_ALLOC = (".comment", ".ARM.attributes", ".debug", ".symtab", ".strtab", ".shstrtab", ".riscv.attributes")


def need(*tools):
    for t in tools:
        if not have(t):
            pytest.skip(f"{t} not installed (make deps-apt)")


def _env(extra=None):
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(extra or {})
    return e


EDGEC = f"{sys.executable} -m edgec"


def edgec(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "edgec", *map(str, args)], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def make(*args, cwd=None):
    return subprocess.run(["make", *map(str, args)], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=600)


def build_firmware(model, out, *extra):
    r = edgec("build", model, "--target", "cortex-m4", "-o", out, "--firmware", *extra)
    assert r.returncode == 0, r.stderr
    r = make("-C", out, "firmware")
    assert r.returncode == 0, r.stderr
    return out / "firmware.elf"


def size_json(*args, cwd=None):
    r = edgec("size", *args, "--json", cwd=cwd)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def arm_size(elf):
    """arm-none-eabi-size: ({section: size} from -A, (text, data, bss) Berkeley)."""
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    secs = {}
    for line in out.splitlines():
        m = re.match(r"^(\.\S+)\s+(\d+)\s+(\d+)\s*$", line)
        if m:
            secs[m.group(1)] = int(m.group(2))
    out = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    text, data, bss = map(int, out[1].split()[:3])
    return secs, (text, data, bss)


def arm_nm(elf):
    """[(name, size, type letter)] of sized symbols, by arm-none-eabi-nm."""
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    res = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            res.append((parts[3], int(parts[1], 16), parts[2]))
    return res


@pytest.fixture(scope="module")
def kws_fw(tmp_path_factory):
    need("arm-none-eabi-gcc")
    out = tmp_path_factory.mktemp("kws") / "bundle"
    return build_firmware(EXAMPLE_KWS, out)


def test_help():
    for cmd in ("size", "check"):
        r = edgec(cmd, "--help")
        assert r.returncode == 0 and "Usage" in r.stdout and "--json" in r.stdout


# ---- the done-when checks ----------------------------------------------------------------

@pytest.mark.parametrize("model", INT8)
def test_sections_and_layers_match_binutils(model, tmp_path):
    """Per-section flash/RAM equal arm-none-eabi-size's; per-layer weights add up to the
    layer constants nm finds in .rodata, and to the bundle's planned weights."""
    need("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm")
    path = shared_model(f"mlperf_tiny/{model}")
    elf = build_firmware(path, tmp_path / "b")
    rep = size_json(elf)
    secs, (text, data, bss) = arm_size(elf)

    mine = {s["name"]: s["size"] for s in rep["sections"]}
    theirs = {k: v for k, v in secs.items() if v > 0 and not k.startswith(NON_ALLOC)}
    assert mine == theirs
    for name in (".isr_vector", ".text", ".rodata", ".bss", ".stack"):
        assert name in mine, name
    assert rep["berkeley"] == {"text": text, "data": data, "bss": bss}
    assert rep["flash"]["total"] == text + data
    assert rep["ram"]["total"] == data + bss
    assert rep["flash"]["sections"][".text"] == secs[".text"]
    assert rep["ram"]["sections"][".stack"] == secs[".stack"] == rep["reservations"]["stack"]["bytes"]
    # every byte is in exactly one part
    assert sum(rep["flash"]["parts"].values()) == rep["flash"]["total"]
    assert sum(rep["ram"]["parts"].values()) == rep["ram"]["total"]

    # layers: weights and code from nm, independently
    build = json.loads((tmp_path / "b" / "report.json").read_text())
    nm = arm_nm(elf)
    layer_consts = sum(sz for n, sz, t in nm if re.match(r"model_l\d+_", n) and t in "rR")
    layer_code = sum(sz for n, sz, t in nm if re.match(r"model_l\d+_", n) and t in "tT")
    weights = sum(L["weights_bytes"] for L in rep["layers"])
    assert weights == layer_consts == rep["flash"]["parts"]["weights"] > 0
    assert sum(L["code_bytes"] for L in rep["layers"]) == layer_code == rep["flash"]["parts"]["kernel_code"]
    assert weights <= rep["flash"]["sections"][".rodata"]
    in_rodata = {s["name"] for s in rep["symbols"] if s["section"] == ".rodata"}
    code_names = {s["name"] for s in rep["symbols"] if s["kind"] == "code"}
    assert all(n in in_rodata for L in rep["layers"] for n in L["symbols"] if n not in code_names)
    # per layer, exactly the constants model.c declares that the linked image kept (the
    # compiler may fold a tiny array into the code: VWW's 2-element FC bias)
    declared = {}
    for ctype, sym, layer, n in re.findall(r"static const (\w+) (model_l(\d+)_\w+)\[(\d+)\]",
                                           (tmp_path / "b" / "model.c").read_text()):
        declared[sym] = (int(layer), int(n) * CSIZE[ctype])
    kept = {n for n, _, t in nm if t in "rR"}
    for L in rep["layers"]:
        expect = sum(sz for sym, (layer, sz) in declared.items() if layer == L["index"] and sym in kept)
        assert L["weights_bytes"] == expect, L
        assert L["weights_bytes"] <= L["weights_bytes_planned"]
    assert sum(sz for _, sz in declared.values()) == build["weights_bytes"]
    assert build["weights_bytes"] - weights == sum(sz for sym, (_, sz) in declared.items() if sym not in kept)
    assert [L["op"] for L in rep["layers"]] == [L["op"] for L in build["layers"]]
    assert all(L["code_bytes"] > 0 for L in rep["layers"])
    # the arena: the symbol nm sees, the plan, and each layer's share at the peak
    arena = [sz for n, sz, t in nm if n == "model_arena_store"]
    assert arena == [build["arena_bytes"]] == [rep["arena"]["bytes"]] == [rep["ram"]["parts"]["arena"]]
    a = rep["arena"]
    assert a["peak_live_bytes"] == max(L["arena_live_bytes"] for L in rep["layers"]) <= a["bytes"]
    assert sum(L["arena_peak_share"] for L in rep["layers"]) == a["peak_live_bytes"]
    # harness and C library are told apart
    assert rep["flash"]["parts"]["app"] > 0 and rep["flash"]["parts"]["libc"] > 0
    assert rep["flash"]["parts"]["test_data"] > 0
    owners = {s["name"]: s["owner"] for s in rep["symbols"]}
    assert owners["main"] == "app" and owners["Reset_Handler"] == "app"
    assert owners["model_invoke"] == "model" and owners["memcpy"] == "libc"


def _png_pixels(path):
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) -> (w, h, rows of bytes, bpp)."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
            bpp = 3 if ctype == 2 else 4
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, bpp


def _count_color(rows, bpp, hex_color):
    rgb = bytes(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    n = 0
    for row in rows:
        for x in range(0, len(row), bpp):
            if row[x:x + 3] == rgb:
                n += 1
    return n


def test_html_report_renders_in_chromium(kws_fw, tmp_path):
    """The HTML opens in a real browser (Debian's chromium, headless) and shows the
    breakdown: the treemap's weights and kernel-code colours cover real pixels, and
    the rendered DOM has a rectangle per layer part and the per-layer table."""
    need("chromium")
    from edgec.report.render import COLORS
    page = tmp_path / "size.html"
    r = edgec("size", kws_fw, "-o", page)
    assert r.returncode == 0, r.stderr
    text = page.read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text and "<script" not in text and "<link" not in text
    args = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--force-device-scale-factor=1"]
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    rep = size_json(kws_fw)
    n_layers = len(rep["layers"])
    assert dom.stdout.count('class="leaf"') >= 2 * n_layers - 3  # weights + code per layer
    assert "L2 Conv weights" in dom.stdout and "activation arena" in dom.stdout
    assert len(re.findall(r"<tr[^>]*>\s*<td>\d+</td>", dom.stdout)) == n_layers
    png = tmp_path / "shot.png"
    shot = subprocess.run([*args, "--window-size=1040,1600", f"--screenshot={png}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    w, h, rows, bpp = _png_pixels(png)
    assert (w, h) == (1040, 1600)
    weights_px = _count_color(rows, bpp, COLORS["weights"])
    code_px = _count_color(rows, bpp, COLORS["kernel_code"])
    # the weights are ~80% of flash: a large area of the page; the code a visible one
    assert weights_px > 100_000, weights_px
    assert code_px > 2_000, code_px


def test_check_budget_exact_and_one_byte_short(kws_fw):
    need("arm-none-eabi-size")
    _, (text, data, bss) = arm_size(kws_fw)
    flash, ram = text + data, data + bss
    r = edgec("check", kws_fw, "--flash", flash, "--ram", ram)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok" in r.stdout and "OVER" not in r.stdout

    r = edgec("check", kws_fw, "--flash", flash - 1, "--ram", ram)
    assert r.returncode == 1
    assert "OVER by 1 B" in r.stdout
    assert f"flash {flash:,} B exceeds its budget of {flash - 1:,} B by 1 B" in r.stderr
    assert "RAM" not in r.stderr

    r = edgec("check", kws_fw, "--flash", flash, "--ram", ram - 1, "--json")
    assert r.returncode == 1
    d = json.loads(r.stdout)
    assert d["check"]["ok"] is False
    rows = {b["budget"]: b for b in d["check"]["budgets"]}
    assert rows["ram"]["headroom"] == -1 and rows["flash"]["headroom"] == 0
    assert f"RAM {ram:,} B exceeds its budget of {ram - 1:,} B by 1 B" in r.stderr

    r = edgec("check", kws_fw, "--flash", flash - 1, "--markdown")
    assert r.returncode == 1 and "**over by 1 B**" in r.stdout


@pytest.mark.parametrize("args,needle", [
    (["--flash", "12Q"], "bad --flash budget"),
    (["--flash", "-5K"], "bad --flash budget"),
    (["--ram", "1.5"], "not a whole number"),
    (["--flash", "64K", "--max-growth", "2%"], "--max-growth needs --baseline"),
    (["--flash", "64K", "--baseline", "nonexistent.json"], "no such baseline"),
])
def test_check_bad_budget_exit_2_one_line(kws_fw, args, needle):
    r = edgec("check", kws_fw, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "using" not in ln]
    assert len(lines) == 1 and needle in lines[0], r.stderr


@pytest.mark.parametrize("content,needle", [
    ("[budget\nflash = 1", "bad TOML"),
    ("[budget]\nflash = \"64Q\"\n", "bad flash budget"),
    ("[budget]\nflsh = \"64K\"\n", "unknown key 'flsh' in [budget]"),
    ("modle = \"m.tflite\"\n", "unknown key 'modle'"),
    ("lto = \"yes\"\n", "'lto' must be true or false"),
    ("[budget]\nmax-growth = \"two percent\"\n", "bad max-growth"),
    ("[budget]\nram = 1.5\n", "bad ram budget"),
])
def test_malformed_config_exit_2_one_line(kws_fw, tmp_path, content, needle):
    (tmp_path / "edgec.toml").write_text(content)
    r = edgec("check", kws_fw, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and "edgec.toml" in lines[0], r.stderr


def test_bad_inputs_exit_2(tmp_path, kws_fw):
    (tmp_path / "x.elf").write_bytes(b"not an elf at all")
    for args, needle in ((["size", tmp_path / "x.elf"], "not an ELF"),
                         (["size", tmp_path / "missing.elf"], "no such file"),
                         (["size", tmp_path], "no report.json"),
                         (["size", kws_fw, "--json", "--html"], "choose one of"),
                         (["size", kws_fw, "-o", tmp_path / "r.pdf"], "unknown extension"),
                         (["check", kws_fw, "--baseline", kws_fw.parent / "report.json"],
                          "build report")):
        r = edgec(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert needle in r.stderr, (args, r.stderr)


def test_baseline_reports_exact_growth_of_an_option(tmp_path):
    """-Os -> -O2: check --baseline prints the byte growth arm-none-eabi-size measures,
    per section and per layer; --max-growth turns it into a failure."""
    need("arm-none-eabi-gcc", "arm-none-eabi-size")
    e_s = build_firmware(EXAMPLE_KWS, tmp_path / "os", "--opt-level", "s")
    e_2 = build_firmware(EXAMPLE_KWS, tmp_path / "o2", "--opt-level", "2")
    base = tmp_path / "base.json"
    r = edgec("size", e_s, "-o", base)
    assert r.returncode == 0, r.stderr
    s_secs, (t1, d1, b1) = arm_size(e_s)
    o_secs, (t2, d2, b2) = arm_size(e_2)
    growth = (t2 + d2) - (t1 + d1)
    assert growth != 0  # -O2 trades size for speed
    r = edgec("check", e_2, "--baseline", base, "--json")
    assert r.returncode == 0, r.stderr  # no budget, no limit: informational
    d = json.loads(r.stdout)
    g = d["growth"]
    assert g["flash"]["growth"] == growth
    assert g["ram"]["growth"] == (d2 + b2) - (d1 + b1)
    assert g["sections"][".text"]["growth"] == o_secs[".text"] - s_secs[".text"]
    assert g["baseline"]["options"]["opt_level"] == "s" and d["options"]["opt_level"] == "2"
    per_layer = sum(L["code_bytes"]["growth"] for L in g["layers"])
    new_layers = {L["index"]: L for L in d["layers"]}
    old_layers = {L["index"]: L for L in json.loads(base.read_text())["layers"]}
    assert per_layer == sum(new_layers[i]["code_bytes"] - old_layers[i]["code_bytes"] for i in new_layers)
    assert all(L["weights_bytes"]["growth"] == 0 for L in g["layers"])

    r = edgec("check", e_2, "--baseline", base)
    assert r.returncode == 0
    assert f"{growth:+,}" in r.stdout and "growth since the baseline" in r.stdout
    r = edgec("check", e_2, "--baseline", base, "--markdown")
    assert f"| **flash** | {t1 + d1:,} | {t2 + d2:,} | {growth:+,} |" in r.stdout

    worse = growth > 0
    r = edgec("check", e_2, "--baseline", base, "--max-growth", "0%")
    assert r.returncode == (1 if worse else 0), r.stdout + r.stderr
    if worse:
        assert f"flash grew by {growth:,} B" in r.stderr
    r = edgec("check", e_2, "--baseline", base, "--max-growth", f"{abs(growth)}")
    assert r.returncode == 0, r.stderr
    r = edgec("check", e_2, "--baseline", base, "--max-growth", "1000%")
    assert r.returncode == 0, r.stderr


# ---- config-driven and Makefile-driven builds ---------------------------------------------

def test_config_file_drives_build_and_check(tmp_path):
    need("arm-none-eabi-gcc")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "model").mkdir()
    (proj / "model" / "kws.tflite").write_bytes(EXAMPLE_KWS.read_bytes())
    cfg = """model = "model/kws.tflite"
target = "cortex-m4"
name = "kws"
output = "build/kws"
opt-level = "s"
firmware = true

[budget]
flash = "{flash}"
ram = "{ram}"
"""
    (proj / "edgec.toml").write_text(cfg.format(flash="256K", ram="64K"))
    r = edgec("build", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert (proj / "build" / "kws" / "kws.c").exists()
    assert (proj / "build" / "kws" / "firmware" / "main.c").exists()
    r = make("-C", proj / "build" / "kws", "firmware")
    assert r.returncode == 0, r.stderr
    r = edgec("check", cwd=proj)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "edgec.toml" in r.stdout  # where the budgets came from
    rep = size_json(cwd=proj)
    assert rep["name"] == "kws" and rep["elf"] == "firmware.elf"
    (proj / "edgec.toml").write_text(cfg.format(flash=rep["flash"]["total"] - 1, ram="64K"))
    r = edgec("check", cwd=proj)
    assert r.returncode == 1 and "by 1 B" in r.stderr
    # the command line overrides the file
    r = edgec("check", "--flash", rep["flash"]["total"], cwd=proj)
    assert r.returncode == 0, r.stderr

    # the same in pyproject.toml
    (proj / "edgec.toml").unlink()
    (proj / "pyproject.toml").write_text(
        "[project]\nname = \"x\"\n\n[tool.edgec]\nmodel = \"model/kws.tflite\"\nname = \"kws\"\n"
        "output = \"build/kws\"\n\n[tool.edgec.budget]\nflash = \"1K\"\n")
    r = edgec("check", cwd=proj)
    assert r.returncode == 1 and "flash" in r.stderr and "pyproject.toml" in r.stdout


def test_size_of_bundle_without_elf_links_it(tmp_path):
    """`edgec size BUNDLE` with no firmware.elf links the model with edgec's harness (no
    test vectors) to measure it, and says so."""
    need("arm-none-eabi-gcc")
    out = tmp_path / "b"
    r = edgec("build", EXAMPLE_KWS, "-o", out)
    assert r.returncode == 0, r.stderr
    rep = size_json(out)
    assert "linked" in rep["note"] and "no test vectors" in rep["note"]
    assert rep["flash"]["parts"]["test_data"] == 0
    assert rep["flash"]["parts"]["weights"] == json.loads((out / "report.json").read_text())["weights_bytes"]
    r = make("-C", out, "size-check", f"EDGEC={EDGEC}", "EDGEC_FLASH_BUDGET=1K")
    assert r.returncode != 0 and "exceeds its budget of 1,024 B" in r.stderr


def test_bundle_makefile_size_targets(kws_fw):
    b = kws_fw.parent
    r = make("-C", b, "size", f"EDGEC={EDGEC}")
    assert r.returncode == 0, r.stderr
    assert "per layer" in r.stdout and "kernel code" in r.stdout
    flash = size_json(kws_fw)["flash"]["total"]
    r = make("-C", b, "size-check", f"EDGEC={EDGEC}", f"EDGEC_FLASH_BUDGET={flash}")
    assert r.returncode == 0, r.stderr
    r = make("-C", b, "size-check", f"EDGEC={EDGEC}", f"EDGEC_FLASH_BUDGET={flash - 1}")
    assert r.returncode == 2 and "by 1 B" in r.stderr  # make exits 2 when a recipe fails
    # without budgets: the target's typical memory
    r = make("-C", b, "size-check", f"EDGEC={EDGEC}")
    assert r.returncode == 0 and "typical memory of cortex-m4" in r.stdout, r.stdout + r.stderr


APP_MAKEFILE = """\
# An existing firmware project that adds an edgec model to its build.
EDGEC_FLASH_BUDGET = 1M
include {bundle}/edgec.mk

CC := $(EDGEC_CC)
CFLAGS := $(EDGEC_CFLAGS) $(EDGEC_INCLUDES:%=-I%) -Wall -Wextra -Werror
SRCS := app.c $(EDGEC_SOURCES)

app.elf: $(SRCS) $(EDGEC_HEADERS)
\t$(CC) $(CFLAGS) $(SRCS) --specs=nosys.specs $(EDGEC_LDFLAGS) -Wl,--gc-sections $(EDGEC_LDLIBS) -o $@

size: app.elf
\t$(EDGEC_SIZE) app.elf --json > size.json

size-check: app.elf
\t$(EDGEC_CHECK) app.elf

vars:
\t@echo "NAME=$(EDGEC_NAME) TARGET=$(EDGEC_TARGET) ARENA=$(EDGEC_ARENA_SIZE) WEIGHTS=$(EDGEC_WEIGHTS_BYTES)"
\t@echo "REPORT=$(EDGEC_REPORT)"
"""

APP_C = """\
#include <stdint.h>
#include "kws.h"
static int8_t in[KWS_INPUT0_ELEMENTS];
static int8_t out[KWS_OUTPUT0_ELEMENTS];
int main(void) {
  for (int i = 0; i < KWS_INPUT0_ELEMENTS; i++) in[i] = (int8_t)i;
  return kws_invoke(in, out) == 0 ? out[0] : -1;
}
"""


def test_edgec_mk_included_by_an_existing_makefile(tmp_path):
    need("arm-none-eabi-gcc")
    bundle = tmp_path / "third_party" / "kws"
    r = edgec("build", EXAMPLE_KWS, "-o", bundle, "--name", "kws")
    assert r.returncode == 0, r.stderr
    app = tmp_path / "app"
    app.mkdir()
    (app / "Makefile").write_text(APP_MAKEFILE.format(bundle="../third_party/kws"))
    (app / "app.c").write_text(APP_C)
    rep = json.loads((bundle / "report.json").read_text())
    r = make("-C", app, "vars", f"EDGEC={EDGEC}")
    assert r.returncode == 0, r.stderr
    assert f"NAME=kws TARGET=cortex-m4 ARENA={rep['arena_bytes']} WEIGHTS={rep['weights_bytes']}" in r.stdout
    assert "REPORT=../third_party/kws/report.json" in r.stdout
    r = make("-C", app, "size", f"EDGEC={EDGEC}")
    assert r.returncode == 0, r.stderr
    d = json.loads((app / "size.json").read_text())
    assert d["name"] == "kws" and d["elf"] == "app.elf"
    assert d["flash"]["parts"]["weights"] == rep["weights_bytes"]
    assert d["arena"]["bytes"] == rep["arena_bytes"]
    assert len(d["layers"]) == len(rep["layers"])
    # newlib's crt0 and C library, not edgec's harness
    assert d["flash"]["parts"]["libc"] > 0 and d["flash"]["parts"]["test_data"] == 0
    r = make("-C", app, "size-check", f"EDGEC={EDGEC}")
    assert r.returncode == 0, r.stdout + r.stderr
    r = make("-C", app, "size-check", f"EDGEC={EDGEC}", "EDGEC_RAM_BUDGET=1K")
    assert r.returncode == 2 and "RAM" in r.stderr and "exceeds its budget of 1,024 B" in r.stderr


CMAKE_APP = """\
# An SDK-style CMake project: its toolchain settings (what a toolchain file holds), then the bundle.
cmake_minimum_required(VERSION 3.13)
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CPU_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16")
set(CMAKE_C_FLAGS_INIT "${{CPU_FLAGS}}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "--specs=nosys.specs --specs=nano.specs -Wl,--gc-sections")
project(sdk_app C)
add_subdirectory(../third_party/kws kws)
if(NOT EDGEC_KWS_CPU_FLAGS STREQUAL CPU_FLAGS)
  message(FATAL_ERROR "bundle CPU flags '${{EDGEC_KWS_CPU_FLAGS}}' differ from the toolchain's")
endif()
add_executable(app.elf app.c)
target_link_libraries(app.elf PRIVATE edgec::kws)
set(EDGEC_FLASH_BUDGET {flash})
edgec_kws_size_targets(app.elf)
"""


def test_cmake_library_target_with_arm_toolchain(tmp_path):
    need("cmake", "arm-none-eabi-gcc")
    bundle = tmp_path / "third_party" / "kws"
    r = edgec("build", EXAMPLE_KWS, "-o", bundle, "--name", "kws")
    assert r.returncode == 0, r.stderr
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.c").write_text(APP_C)
    (app / "CMakeLists.txt").write_text(CMAKE_APP.format(flash="1M"))
    exe = f"-DEDGEC_EXECUTABLE={sys.executable};-m;edgec"
    r = subprocess.run(["cmake", "-S", str(app), "-B", str(app / "build"), exe], capture_output=True,
                       text=True, env=_env())
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", str(app / "build"), "--target", "app.elf-size"],
                       capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "per layer" in r.stdout
    elf = app / "build" / "app.elf"
    d = size_json(elf, "--bundle", bundle)
    rep = json.loads((bundle / "report.json").read_text())
    assert d["machine"] == "EM_ARM"
    assert d["flash"]["parts"]["weights"] == rep["weights_bytes"]
    assert len(d["layers"]) == len(rep["layers"]) and all(L["code_bytes"] > 0 for L in d["layers"])
    # the library was compiled with the bundle's size flags (-Os): same code as the Makefile build
    r = subprocess.run(["cmake", "--build", str(app / "build"), "--target", "app.elf-size-check"],
                       capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stdout + r.stderr
    (app / "CMakeLists.txt").write_text(CMAKE_APP.format(flash="2K"))
    r = subprocess.run(["cmake", "-S", str(app), "-B", str(app / "build"), exe], capture_output=True,
                       text=True, env=_env())
    r = subprocess.run(["cmake", "--build", str(app / "build"), "--target", "app.elf-size-check"],
                       capture_output=True, text=True, env=_env())
    assert r.returncode != 0 and "exceeds its budget of 2,048 B" in r.stdout + r.stderr


def test_firmware_example_makefile_size_targets(tmp_path):
    need("arm-none-eabi-gcc")
    ex = ROOT / "firmware_examples" / "kws"
    r = make("-C", ex, "size", f"EDGEC={EDGEC}", f"BUILD={tmp_path}")
    assert r.returncode == 0, r.stderr
    assert "kws_app.elf" in r.stdout and "per layer" in r.stdout
    r = make("-C", ex, "size-check", f"EDGEC={EDGEC}", f"BUILD={tmp_path}")
    assert r.returncode == 0, r.stdout + r.stderr
    r = make("-C", ex, "size-check", f"EDGEC={EDGEC}", f"BUILD={tmp_path}", "RAM_BUDGET=8K")
    assert r.returncode == 2 and "RAM" in r.stderr


# ---- accounting details ----------------------------------------------------------------------

def test_reservation_from_linker_symbol_and_no_report(tmp_path):
    """A vendor-style image: no .stack section, the stack reserved by a linker symbol
    (_Min_Stack_Size); no report.json next to the ELF: layers come from symbol names."""
    need("arm-none-eabi-gcc", "arm-none-eabi-size")
    bundle = tmp_path / "b"
    r = edgec("build", EXAMPLE_KWS, "-o", bundle, "--name", "kws")
    assert r.returncode == 0, r.stderr
    (tmp_path / "app.c").write_text(APP_C)
    elf = tmp_path / "vendor.elf"
    subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                    "-mfpu=fpv4-sp-d16", "-Os", "-ffunction-sections", "-fdata-sections", f"-I{bundle}",
                    str(tmp_path / "app.c"), str(bundle / "kws.c"), "--specs=nosys.specs",
                    "-Wl,--gc-sections", "-Wl,--defsym=_Min_Stack_Size=0x400",
                    "-Wl,--defsym=_Min_Heap_Size=0x200", "-lm", "-o", str(elf)], check=True)
    d = size_json(elf)
    _, (text, data, bss) = arm_size(elf)
    assert d["name"] == "kws"  # found from kws_invoke
    assert d["reservations"]["stack"] == {"bytes": 1024, "section": None, "symbol": "_Min_Stack_Size"}
    assert d["reservations"]["heap"]["bytes"] == 512
    assert d["ram"]["unbacked_reservations"] == 1536
    assert d["ram"]["total"] == data + bss + 1536
    assert d["flash"]["total"] == text + data
    assert sum(d["ram"]["parts"].values()) == d["ram"]["total"]
    rep = json.loads((bundle / "report.json").read_text())
    assert [L["weights_bytes"] for L in d["layers"]] == [L["weights_bytes"] for L in rep["layers"]]
    assert d["layers"][0]["op"] == "conv" and d["layers"][0]["arena_peak_share"] is None
    # given the bundle, the layers get their names
    d = size_json(elf, "--bundle", bundle)
    assert d["layers"][0]["op"] == "Conv" and d["arena"]["peak_layer"] is not None


def test_stripped_elf_reports_sections_only(kws_fw, tmp_path):
    need("arm-none-eabi-strip")
    s = tmp_path / "stripped.elf"
    subprocess.run(["arm-none-eabi-strip", "-o", str(s), str(kws_fw)], check=True)
    d = size_json(s, "--bundle", kws_fw.parent)
    full = size_json(kws_fw)
    assert d["flash"]["total"] == full["flash"]["total"] and d["ram"]["total"] == full["ram"]["total"]
    assert "stripped" in d["note"] and d["symbols"] == []


def test_json_schema_is_stable_and_deterministic(kws_fw):
    a = edgec("size", kws_fw, "--json").stdout
    b = edgec("size", kws_fw, "--json").stdout
    assert a == b
    d = json.loads(a)
    assert d["schema"] == "edgec-size/1"
    for key in ("edgec_version", "elf", "machine", "name", "target", "model", "options", "note", "flash",
                "ram", "berkeley", "reservations", "model_totals", "sections", "layers", "arena", "symbols"):
        assert key in d, key
    assert set(d["flash"]["parts"]) == {"weights", "kernel_code", "model_runtime", "model_constants", "app",
                                        "test_data", "libc", "unattributed"}
    assert set(d["ram"]["parts"]) == {"arena", "model_other", "app", "libc", "stack", "heap", "unattributed"}
    doc = (ROOT / "docs" / "SIZE_REPORT.md").read_text()
    for key in d["flash"]["parts"]:
        assert f"`{key}`" in doc, key
    for key in d["layers"][0]:
        assert f"`{key}`" in doc, key


# ---- several models in one firmware -------------------------------------------------------------

FOREST = ROOT / "firmware_examples" / "two_models" / "model" / "forest.onnx"

TWO_MAKEFILE = """\
# An existing firmware project with two edgec models.
include {kws}/edgec.mk
include {forest}/edgec.mk
include {kws}/edgec.mk

CC := $(EDGEC_CC)
CFLAGS := $(EDGEC_CFLAGS) $(EDGEC_INCLUDES:%=-I%) -Wall -Wextra -Werror
SRCS := app.c $(EDGEC_SOURCES)

app.elf: $(SRCS) $(EDGEC_HEADERS)
\t$(CC) $(CFLAGS) $(SRCS) --specs=nosys.specs $(EDGEC_LDFLAGS) -Wl,--gc-sections $(EDGEC_LDLIBS) -o $@

size: app.elf
\t$(EDGEC_SIZE) app.elf --json > size.json

size-check: app.elf
\t$(EDGEC_CHECK) app.elf

vars:
\t@echo "BUNDLES=$(EDGEC_BUNDLES)"
\t@echo "SOURCES=$(EDGEC_SOURCES)"
\t@echo "INCLUDES=$(EDGEC_INCLUDES)"
\t@echo "LDLIBS=$(EDGEC_LDLIBS)"
\t@echo "KWS=$(EDGEC_KWS_ARENA_SIZE) $(EDGEC_KWS_WEIGHTS_BYTES) $(EDGEC_KWS_REPORT) $(EDGEC_KWS_TARGET)"
\t@echo "FOREST=$(EDGEC_FOREST_ARENA_SIZE) $(EDGEC_FOREST_WEIGHTS_BYTES) $(EDGEC_FOREST_SOURCES)"
\t@echo "LAST=$(EDGEC_NAME) $(EDGEC_ARENA_SIZE)"
\t@echo "SIZE=$(EDGEC_SIZE)"
"""

TWO_APP_C = """\
#include <stdint.h>
#include "kws.h"
#include "forest.h"
static int8_t in[KWS_INPUT0_ELEMENTS];
static int8_t out[KWS_OUTPUT0_ELEMENTS];
static float x[FOREST_INPUT0_ELEMENTS];
static int64_t label[1];
static float proba[2];
int main(void) {
  for (int i = 0; i < KWS_INPUT0_ELEMENTS; i++) in[i] = (int8_t)i;
  for (int i = 0; i < FOREST_INPUT0_ELEMENTS; i++) x[i] = (float)i / 60.0f;
  if (kws_invoke(in, out) != 0 || forest_invoke(x, label, proba) != 0) return -1;
  return out[0] + (int)label[0];
}
"""


@pytest.fixture(scope="module")
def two_bundles(tmp_path_factory):
    need("arm-none-eabi-gcc")
    root = tmp_path_factory.mktemp("two")
    for model, name in ((EXAMPLE_KWS, "kws"), (FOREST, "forest")):
        r = edgec("build", model, "-o", root / "third_party" / name, "--name", name)
        assert r.returncode == 0, r.stderr
    return root


def test_two_bundles_in_one_makefile(two_bundles, tmp_path):
    """Both bundles' edgec.mk in one Makefile (the first one twice: harmless): the lists
    collect both, each bundle keeps its own EDGEC_<NAME>_* variables, $(EDGEC_SIZE)
    passes both bundles, and the report attributes each model apart."""
    tp = two_bundles / "third_party"
    app = tmp_path / "app"
    app.mkdir()
    (app / "Makefile").write_text(TWO_MAKEFILE.format(kws=tp / "kws", forest=tp / "forest"))
    (app / "app.c").write_text(TWO_APP_C)
    kws = json.loads((tp / "kws" / "report.json").read_text())
    forest = json.loads((tp / "forest" / "report.json").read_text())
    r = make("-C", app, "vars", f"EDGEC={EDGEC}")
    assert r.returncode == 0, r.stderr
    assert f"BUNDLES={tp / 'kws'} {tp / 'forest'}\n" in r.stdout
    assert f"SOURCES={tp / 'kws' / 'kws.c'} {tp / 'forest' / 'forest.c'}\n" in r.stdout
    assert f"INCLUDES={tp / 'kws'} {tp / 'forest'}\n" in r.stdout
    assert re.search(r"^LDLIBS=\s*-lm$", r.stdout, re.M)
    assert f"KWS={kws['arena_bytes']} {kws['weights_bytes']} {tp / 'kws' / 'report.json'} cortex-m4" in r.stdout
    assert f"FOREST={forest['arena_bytes']} {forest['weights_bytes']} {tp / 'forest' / 'forest.c'}" in r.stdout
    assert f"LAST=forest {forest['arena_bytes']}" in r.stdout
    assert f"size --bundle {tp / 'kws'} --bundle {tp / 'forest'}" in r.stdout
    r = make("-C", app, "size", f"EDGEC={EDGEC}")
    assert r.returncode == 0, r.stderr
    d = json.loads((app / "size.json").read_text())
    assert d["name"] == "kws+forest" and [m["name"] for m in d["models"]] == ["kws", "forest"]
    by = {m["name"]: m for m in d["models"]}
    assert by["kws"]["flash"]["weights"] == kws["weights_bytes"]
    assert by["forest"]["flash"]["weights"] == forest["weights_bytes"]
    assert by["kws"]["ram"]["arena"] == kws["arena_bytes"] and by["forest"]["ram"]["arena"] == forest["arena_bytes"]
    assert sum(m["flash"]["total"] for m in d["models"]) == d["model_totals"]["flash"]
    assert [(L["model"], L["index"]) for L in d["layers"]] == \
        [("kws", L["index"]) for L in kws["layers"]] + [("forest", L["index"]) for L in forest["layers"]]
    r = make("-C", app, "size-check", f"EDGEC={EDGEC}")
    assert r.returncode == 0, r.stdout + r.stderr
    # two bundles of one name: make says so and stops
    other = tmp_path / "other" / "kws"
    shutil.copytree(tp / "forest", other)
    (other / "edgec.mk").write_text((tp / "kws" / "edgec.mk").read_text())
    (app / "Makefile").write_text(TWO_MAKEFILE.format(kws=tp / "kws", forest=other))
    r = make("-C", app, "vars", f"EDGEC={EDGEC}")
    assert r.returncode != 0 and "two bundles named kws" in r.stderr


TWO_CMAKE = CMAKE_APP.replace("add_subdirectory(../third_party/kws kws)",
                              "add_subdirectory(../third_party/kws kws)\n"
                              "add_subdirectory(../third_party/forest forest)") \
    .replace("target_link_libraries(app.elf PRIVATE edgec::kws)",
             "target_link_libraries(app.elf PRIVATE edgec::kws edgec::forest)") \
    .replace("edgec_kws_size_targets(app.elf)",
             "edgec_kws_size_targets(app.elf)\nedgec_forest_size_targets(app.elf)\nedgec_size_targets(app.elf)")


def test_two_bundles_in_one_cmake_project(two_bundles):
    """add_subdirectory of both bundles: the size helpers of both (and the shared one)
    make one `app.elf-size` over both bundles, no duplicate target."""
    need("cmake")
    app = two_bundles / "app"
    app.mkdir(exist_ok=True)
    (app / "app.c").write_text(TWO_APP_C)
    (app / "CMakeLists.txt").write_text(TWO_CMAKE.format(flash="1M"))
    exe = f"-DEDGEC_EXECUTABLE={sys.executable};-m;edgec"
    r = subprocess.run(["cmake", "-S", str(app), "-B", str(app / "build"), exe], capture_output=True,
                       text=True, env=_env())
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", str(app / "build"), "--target", "app.elf-size"],
                       capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "per model" in r.stdout and "kws" in r.stdout and "forest" in r.stdout
    r = subprocess.run(["cmake", "--build", str(app / "build"), "--target", "app.elf-size-check"],
                       capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stdout + r.stderr
    d = size_json(app / "build" / "app.elf", "--bundle", two_bundles / "third_party" / "kws",
                  "--bundle", two_bundles / "third_party" / "forest")
    assert [m["name"] for m in d["models"]] == ["kws", "forest"]
    assert all(m["flash"]["kernel_code"] > 0 and m["ram"]["arena"] > 0 for m in d["models"])


def test_two_models_size_formats_check_and_baseline(two_bundles, tmp_path):
    """Text, Markdown and HTML have a per-model table; `check` budgets the whole ELF;
    a baseline compares layers model by model; bad combinations are one-line errors."""
    tp = two_bundles / "third_party"
    elf = tmp_path / "app.elf"
    (tmp_path / "app.c").write_text(TWO_APP_C)
    subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                    "-mfpu=fpv4-sp-d16", "-Os", "-ffunction-sections", "-fdata-sections", f"-I{tp / 'kws'}",
                    f"-I{tp / 'forest'}", str(tmp_path / "app.c"), str(tp / "kws" / "kws.c"),
                    str(tp / "forest" / "forest.c"), "--specs=nosys.specs", "-Wl,--gc-sections", "-lm",
                    "-o", str(elf)], check=True)
    two = ["--bundle", tp / "kws", "--bundle", tp / "forest"]
    d = size_json(elf, *two)
    r = edgec("size", elf, *two)
    assert r.returncode == 0, r.stderr
    assert "per model" in r.stdout and "all models" in r.stdout
    for m in d["models"]:
        assert re.search(rf"│ {m['name']} +│ +{m['flash']['weights']:,} │", r.stdout), r.stdout
    r = edgec("size", elf, *two, "--markdown")
    assert "**Per model**" in r.stdout and f"| `forest` | {d['models'][1]['flash']['weights']:,} |" in r.stdout
    assert "| model | # | op |" in r.stdout
    r = edgec("size", elf, *two, "--html")
    assert '<table id="models">' in r.stdout and "forest layer 1 TreeEnsemble" in r.stdout
    flash = d["flash"]["total"]
    assert edgec("check", elf, *two, "--flash", flash).returncode == 0
    r = edgec("check", elf, *two, "--flash", flash - 1)
    assert r.returncode == 1 and "by 1 B" in r.stderr
    # a baseline: layers are compared within their model
    base = tmp_path / "base.json"
    assert edgec("size", elf, *two, "-o", base).returncode == 0
    r = edgec("check", elf, *two, "--baseline", base, "--json")
    g = json.loads(r.stdout)["growth"]
    assert [(L["model"], L["index"]) for L in g["layers"]] == [(L["model"], L["index"]) for L in d["layers"]]
    assert not any(L["changed"] for L in g["layers"]) and set(g["models"]) == {"kws", "forest"}
    # bad input: one line, exit 2
    for args, needle in (([elf, "--bundle", tp / "kws", "--bundle", tp / "kws"], "two models named kws"),
                         ([tp / "kws", *two], "is not an ELF file"),
                         ([elf, *two, "--report", tp / "kws" / "report.json"], "--report goes with one bundle"),
                         ([elf, "--bundle", tp / "kws", "--bundle", tmp_path], "no report.json")):
        r = edgec("size", *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and needle in lines[0], (args, r.stderr)
    # without bundles: the models by their names, layers from the symbols
    d2 = size_json(elf, "--name", "kws", "--name", "forest")
    assert [m["flash"]["total"] for m in d2["models"]] == [m["flash"]["total"] for m in d["models"]]
    assert d2["layers"][0]["op"] == "conv" and d2["layers"][-1]["model"] == "forest"
