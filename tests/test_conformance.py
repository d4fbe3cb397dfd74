"""The ONNX backend node tests (onnx.backend.test.case.node) as edgec's conformance
suite: every case compiled for the host with -Wall -Wextra -Werror, run on its
shipped inputs and compared with its shipped outputs (edgec/commands/conformance.py).

Skips (clean "unsupported" rejections) must be listed with their reason in
tests/conformance_skips.txt, so an operator that stops compiling is noticed; any
failure (wrong answer, compiler warning, crash, other exception) fails the test.
"""
import warnings

import pytest

from edgec.commands import conformance

def quick_names() -> list[str]:
    """A quick, representative slice for the default run: the first test of every
    operator family (name up to its second underscore, e.g. ``test_reduce``,
    ``test_conv``), and every tenth function-expanded test."""
    names = sorted(c.name for c in conformance.collect())
    first: dict[str, str] = {}
    for n in names:
        if "_expanded" not in n:
            first.setdefault("_".join(n.split("_")[:2]), n)
    expanded = [n for n in names if "_expanded" in n][::10]
    return sorted(set(first.values()) | set(expanded))


def _check(rep, min_pass: int):
    expected = conformance.load_expected_skips()
    failed = [f"{r.name}: {r.reason}" for r in rep.results if r.status == "fail"]
    assert not failed, f"{len(failed)} conformance failures:\n" + "\n".join(failed)
    unexpected = [f"{r.name}: {r.reason}" for r in rep.results
                  if r.status == "skip" and r.name not in expected]
    assert not unexpected, ("skipped but not listed in tests/conformance_skips.txt "
                            "(a regression, or list it with its reason):\n" + "\n".join(unexpected))
    stale = [r.name for r in rep.results if r.status == "pass" and r.name in expected]
    if stale:
        warnings.warn(f"{len(stale)} tests pass now but are listed as skips: {stale[:10]}")
    assert rep.passed >= min_pass, rep.summary()
    print(rep.summary())


def test_conformance_quick(tmp_path):
    """The quick slice, built with AddressSanitizer and UBSan (any report fails the case)."""
    names = quick_names()
    rep = conformance.run([f"^{n}$" for n in names], jobs=1, work_dir=str(tmp_path), sanitize=True)
    assert len(rep.results) == len(names)
    _check(rep, 190)


@pytest.mark.slow
def test_conformance_full(tmp_path):
    """Everything; with the Arm toolchain installed every case must also compile
    warning-free for the Cortex-M4."""
    import shutil
    cross = ("cortex-m4",) if shutil.which("arm-none-eabi-gcc") else ()
    rep = conformance.run(jobs=2, work_dir=str(tmp_path), cross=cross)
    assert len(rep.results) >= conformance.TOTAL_ONNX_1_23 or len(rep.results) > 1500
    _check(rep, 341)


def test_failures_are_detected(tmp_path):
    """The runner itself: a wrong answer is a failure, not a pass."""
    import numpy as np
    cases = conformance.collect([r"^test_relu$"])
    assert len(cases) == 1
    p = conformance.prepare(0, cases[0])
    assert isinstance(p, conformance.Prepared)
    p.expected = [e + np.float32(1) for e in p.expected]
    (r,) = conformance.run_batch([p], tmp_path / "b")
    assert r.status == "fail" and "differs" in r.reason


def test_unsupported_is_a_skip_and_parameter_inputs_bind():
    cases = {c.name: c for c in conformance.collect([r"^test_(string_concat$|reshape_reordered_all_dims$)"])}
    r = conformance.prepare(0, cases["test_string_concat"])
    assert isinstance(r, conformance.CaseResult) and r.status == "skip"
    # Reshape's target shape is a graph input in the test: bound as a constant
    p = conformance.prepare(1, cases["test_reshape_reordered_all_dims"])
    assert isinstance(p, conformance.Prepared) and p.bound == ["shape"]
    r = conformance.prepare(1, cases["test_reshape_reordered_all_dims"], allow_bind=False)
    assert r.status == "skip" and "computed shape" in r.reason


def test_cli_json(edgec_cli):
    import json
    r = edgec_cli("conformance", "-k", "^test_relu$", "-k", "^test_string_concat$", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["total"] == 2 and d["passed"] == 1 and d["skipped"] == 1 and d["failed"] == 0
    assert {x["name"]: x["status"] for x in d["results"]} == {"test_relu": "pass",
                                                              "test_string_concat": "skip"}
