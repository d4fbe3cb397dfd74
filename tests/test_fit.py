"""Fit to the target: a model whose constants or arena alone exceed the target's declared
flash / RAM is refused by `edgec build` (exit 2, one line naming the overflow); with
--no-fit-check it builds and the firmware link fails as it would for the board (the
harness links with the declared memory); --flash / --ram declare the part's memory."""
import json

import pytest

from conftest import EXAMPLE_KWS, MLPERF, have

AD_FLOAT = MLPERF / "ad01_fp32.tflite"   # 1,063,456 B of float weights; cortex-m4 declares 1 MB


def _one_error_line(r):
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgec: error: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def test_over_flash_refused_then_link_fails_like_the_board(edgec_cli, tmp_path):
    r = edgec_cli("build", AD_FLOAT, "--target", "cortex-m4", "-o", tmp_path / "a")
    assert r.returncode == 2
    line = _one_error_line(r)
    assert "does not fit target cortex-m4" in line and "1,063,456 B of flash" in line and \
        "14,880 B more than the 1,048,576 B" in line, line
    assert not (tmp_path / "a").exists()
    if not (have("arm-none-eabi-gcc") and have("make")):
        pytest.skip("arm-none-eabi-gcc not installed")
    r = edgec_cli("build", AD_FLOAT, "--target", "cortex-m4", "-o", tmp_path / "b", "--no-fit-check",
                  "--firmware")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "b" / "report.json").read_text())
    assert rep["fit"]["flash_headroom"] == -14_880
    import subprocess
    m = subprocess.run(["make", "-C", str(tmp_path / "b"), "firmware"], capture_output=True, text=True)
    assert m.returncode != 0 and "region `FLASH' overflowed" in m.stderr, m.stderr[-800:]


def test_over_ram_refused(edgec_cli, tmp_path):
    r = edgec_cli("build", EXAMPLE_KWS, "--target", "cortex-m4", "--ram", "4K", "-o", tmp_path / "a")
    assert r.returncode == 2
    line = _one_error_line(r)
    assert "of RAM" in line and "4,096 B it declares" in line and "flash" not in line.split("RAM")[0], line


def test_part_memory_makes_it_fit_and_run(edgec_cli, tmp_path):
    """--flash 2M: the same model fits a part with more flash, builds and runs in QEMU."""
    if not (have("arm-none-eabi-gcc") and have("qemu-system-arm")):
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed")
    r = edgec_cli("build", AD_FLOAT, "--target", "cortex-m4", "--flash", "2M", "-o", tmp_path / "b",
                  "--firmware")
    assert r.returncode == 0, r.stderr
    assert "headroom 1,033,696 B flash" in r.stdout
    import subprocess
    m = subprocess.run(["make", "-C", str(tmp_path / "b"), "firmware", "run"], capture_output=True, text=True)
    assert m.returncode == 0 and "EDGEC-RESULT PASS" in m.stdout, m.stdout[-800:] + m.stderr[-800:]
    link = (tmp_path / "b" / "firmware" / "link.ld").read_text()
    assert "LENGTH = 0x200000" in link or "LENGTH = 2097152" in link, link[:600]
