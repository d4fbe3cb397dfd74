"""Target files are validated before anything is generated from them: a hostile or
broken one makes ``edgec build`` exit 2 with one line naming the key, writes no
bundle, and nothing of it reaches a Makefile, edgec.mk or CMakeLists.txt.  (Model
parameters the kernels cannot take are malformed model files: they are in
tests/hostile_corpus.py, checked by tests/test_hostile.py.)"""
import os
import subprocess
import sys

import pytest

from conftest import ROOT

BASE = (ROOT / "targets" / "cortex-m3.toml").read_text()
MODEL = ROOT / "tests" / "fuzz_regressions" / "int8-s1-i21.tflite"

# README's example of a board of one's own (QEMU's lm3s6965evb), as tests/test_mcu.py runs it
LM3S = '''name = "lm3s6965"
description = "TI Stellaris LM3S6965 (Cortex-M3), QEMU lm3s6965evb"
arch = "arm"
cc = "arm-none-eabi-gcc"
package = "gcc-arm-none-eabi libnewlib-arm-none-eabi"
cflags = ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft", "-DBOARD_LM3S=1", "-Wl,--no-warn-rwx-segments"]
ldflags = ["--specs=nano.specs"]
[memory]
flash = "256K"
ram = "64K"
[qemu]
binary = "qemu-system-arm"
machine = "lm3s6965evb"
flash_origin = 0x00000000
flash_size = "256K"
ram_origin = 0x20000000
ram_size = "64K"
uart = "pl011"
uart_base = 0x4000C000
cpu_hz = 12000000
'''


def _sub(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new)


# (case, target file text, what the one error line must say)
HOSTILE = [
    ("name_newline_make_rule", _sub('name = "cortex-m3"', 'name = "m3\\nall:\\n\\ttouch PWNED"'),
     "bad target file: name 'm3\\nall:"),
    ("name_space", _sub('name = "cortex-m3"', 'name = "cortex m3"'), "name 'cortex m3' is not a name"),
    ("name_not_a_string", _sub('name = "cortex-m3"', "name = 3"), "name must be a string"),
    ("cflags_make_shell", _sub('cflags = [', 'cflags = ["$(shell touch PWNED)", '),
     "cflags item '$(shell touch PWNED)' is not a single compiler flag"),
    ("cflags_semicolon", _sub('cflags = [', 'cflags = ["-O2;touch PWNED", '), "cflags item '-O2;touch PWNED'"),
    ("cflags_backquote", _sub('cflags = [', 'cflags = ["-D`id`", '), "cflags item '-D`id`'"),
    ("cflags_quote", _sub('cflags = [', 'cflags = ["-DX=\\"PWNED\\"", '), "cflags item '-DX=\"PWNED\"'"),
    ("cflags_hash", _sub('cflags = [', 'cflags = ["-O2#", '), "cflags item '-O2#'"),
    ("cflags_newline", _sub('cflags = [', 'cflags = ["-O2\\nPWNED", '), "cflags item '-O2\\nPWNED'"),
    ("cflags_space", _sub('cflags = [', 'cflags = ["-O2 -DPWNED", '), "cflags item '-O2 -DPWNED'"),
    ("cflags_a_string", _sub('cflags = ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"]',
                             'cflags = "-mcpu=cortex-m3"'), "cflags must be a list of strings"),
    ("cflags_number", _sub('cflags = [', 'cflags = [3, '), "cflags must be a list of strings; it holds 3"),
    ("ldflags_dollar", _sub('ldflags = ["--specs=nano.specs"]', 'ldflags = ["-L$HOME"]'),
     "ldflags item '-L$HOME'"),
    ("cc_shell", _sub('cc = "arm-none-eabi-gcc"', 'cc = "gcc;id"'), "cc 'gcc;id' is not a compiler"),
    ("cc_option", _sub('cc = "arm-none-eabi-gcc"', 'cc = "-fplugin=x.so"'), "cc '-fplugin=x.so'"),
    ("package_shell", _sub('package = "gcc-arm-none-eabi libnewlib-arm-none-eabi"', 'package = "x && rm -rf ~"'),
     "package 'x && rm -rf ~'"),
    ("features_newline", _sub("features = []", 'features = ["dsp\\n"]'), "features item 'dsp\\n'"),
    ("memory_string", _sub('[memory]\nflash = "256K"\nram = "64K"', 'memory = "256K"'),
     "memory must be a table, not '256K'"),
    ("memory_list", _sub('[memory]\nflash = "256K"\nram = "64K"', 'memory = ["256K"]'),
     "memory must be a table"),
    ("memory_flash_list", _sub('flash = "256K"', 'flash = ["256K"]'), "memory.flash must be a size"),
    ("memory_ram_zero", _sub('ram = "64K"', "ram = 0"), "memory.ram 0 is not a size"),
    ("qemu_string", 'qemu = "x"\n' + BASE[:BASE.index("[qemu]")], "qemu must be a table, not 'x'"),
    ("machine_option", _sub('machine = "mps2-an385"', 'machine = "mps2-an385 -append x"'),
     "qemu.machine 'mps2-an385 -append x' is not a QEMU machine name"),
    ("binary_shell", _sub('binary = "qemu-system-arm"', 'binary = "qemu-system-arm|sh"'),
     "qemu.binary 'qemu-system-arm|sh'"),
    ("origin_string", _sub("flash_origin = 0x00000000", 'flash_origin = "0x0"'),
     "qemu.flash_origin must be an integer, not '0x0'"),
    ("origin_float", _sub("ram_origin = 0x20000000", "ram_origin = 536870912.5"),
     "qemu.ram_origin must be an integer"),
    ("origin_past_4g", _sub("ram_origin = 0x20000000", "ram_origin = 0x1_0000_0000"),
     "qemu.ram_origin 0x100000000 is outside 0x0..0xffffffff"),
    ("region_past_4g", _sub("ram_origin = 0x20000000", "ram_origin = 0xFFFF0000"),
     "qemu.ram_origin + qemu.ram_size ends past 4G"),
    ("uart_base_bool", _sub("uart_base = 0x40004000", "uart_base = true"), "qemu.uart_base must be an integer"),
    ("uart_kind", _sub('uart = "cmsdk"', 'uart = "ns16550"'), "qemu.uart 'ns16550' is not one of cmsdk"),
    ("cpu_hz_zero", _sub("cpu_hz = 25000000", "cpu_hz = 0"), "qemu.cpu_hz 0 is outside 1..4294967295"),
    ("cpu_hz_string", _sub("cpu_hz = 25000000", 'cpu_hz = "25MHz"'), "qemu.cpu_hz must be an integer"),
]


def _build(target_text: str, tmp_path, name: str = "board.toml"):
    t = tmp_path / name
    t.write_text(target_text)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "edgec", "build", str(MODEL), "--target", str(t),
                        "-o", str(tmp_path / "out")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    return p


@pytest.mark.parametrize("case,text,says", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_target_file_exits_2_with_one_line(case, text, says, tmp_path):
    p = _build(text, tmp_path)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2, (p.returncode, p.stderr[-800:])
    assert len(lines) == 1 and lines[0].startswith("edgec: error: "), p.stderr
    assert "Traceback" not in p.stderr
    assert says in lines[0], lines[0]
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "PWNED").exists()


def test_builtin_targets_pass_the_checks():
    from edgec.target import targets
    names = [t.name for t in targets.all_targets()]
    assert "cortex-m4" in names and "riscv32" in names and "host" in names


def test_unknown_target_name_that_is_no_word():
    from edgec.target import targets
    from edgec.ir.errors import EdgecError
    with pytest.raises(EdgecError, match="unknown target"):
        targets.load("cortex-m4\0")
    with pytest.raises(EdgecError, match="unknown target"):
        targets.load("host; id")


def test_user_target_file_builds_and_its_flags_reach_the_build_files(tmp_path):
    """The README's own board file still works, flags as separate words, and the
    bundle's Makefile parses (make -n) with them."""
    p = _build(LM3S, tmp_path, "lm3s.toml")
    assert p.returncode == 0, p.stderr
    out = tmp_path / "out"
    mk = (out / "edgec.mk").read_text()
    assert "EDGEC_MODEL_TARGET := lm3s6965\n" in mk
    assert ("EDGEC_CPUFLAGS := -mcpu=cortex-m3 -mthumb -mfloat-abi=soft -DBOARD_LM3S=1 "
            "-Wl,--no-warn-rwx-segments\n") in mk
    assert "EDGEC_QEMU := qemu-system-arm -M lm3s6965evb " in mk
    assert '"-mcpu=cortex-m3 -mthumb -mfloat-abi=soft -DBOARD_LM3S=1' in (out / "CMakeLists.txt").read_text()
    r = subprocess.run(["make", "-n", "-C", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "arm-none-eabi-gcc -std=c99 -mcpu=cortex-m3" in r.stdout


def test_options_extra_maps_onto_the_typed_fields_and_refuses_unknown_names():
    from edgec.ir.errors import EdgecError
    from edgec.pipeline import Options
    o = Options(extra={"kernels": "plain", "tflm_check": False})
    assert (o.kernels, o.tflm_check, o.sparse) == ("plain", False, None)
    assert o.flags() == {"kernels": "plain", "tflm_check": False}
    with pytest.raises(EdgecError, match="unknown option kernal "):
        Options(extra={"kernal": "plain"})


def test_graph_copy_takes_a_shallow_copy_of_its_meta():
    from edgec.ir.graph import Graph
    g = Graph("m")
    g.meta.format = "onnx"
    g.meta.labels["y"] = ["a", "b"]
    h = g.copy()
    h.meta.format = "tflite"
    assert h.meta is not g.meta and g.meta.format == "onnx"
    assert h.meta.labels is g.meta.labels      # as dict(meta) shared its values
