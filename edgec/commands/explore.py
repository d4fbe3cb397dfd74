"""``edgec explore``: the size / accuracy trade-off of every compression technique.

For a model and evaluation data, each technique at each strength (int8 quantization,
magnitude pruning, low-rank factorization, binarization, and their combinations with
int8) is applied, compiled for the target and measured:

* flash and RAM from the linked firmware ELF (:mod:`edgec.target.elfsize`): the model's flash
  (weights + kernel code) and the whole firmware's, the arena; on a target with an
  emulator, the instructions per inference too (QEMU ``-icount shift=0``, the second
  inference, as ``edgec bench``), with the outputs checked against edgec's reference
  of the transformed graph first; on the host target only the compiler's estimate;
* the accuracy against the original model on the data (:func:`edgec.passes.accuracy.evaluate`):
  top-1 with labels, else the output SQNR.

The result is a table, JSON (schema ``edgec-explore/1``) and a self-contained HTML
page whose SVG plot marks the size/accuracy frontier (the points no other point
beats on both flash and accuracy).
"""
from __future__ import annotations

import html
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import data
from ..ir import progress as progress_bar
from ..ir.errors import EdgecError
from ..pipeline import Options, compile_full, evaluate_transformed, expected_outputs, load, lower
from ..target import elfsize, firmware, targets

SCHEMA = "edgec-explore/1"
TECHNIQUES = ("int8", "prune", "low-rank", "binarize")
PRUNE_LEVELS = ("0.5", "0.7", "0.9")
LOW_RANK_LEVELS = ("0.95", "0.9", "0.8")
BINARIZE_LEVELS = (("hidden", "weights"), ("hidden", "xnor"), ("all", "weights"))


@dataclass
class Config:
    technique: str
    strength: str
    low_rank: tuple = ()
    prune: tuple = ()
    binarize: tuple = ()
    binarize_mode: str = "xnor"
    int8: bool = False

    @property
    def label(self) -> str:
        return self.technique + (f" {self.strength}" if self.strength else "")


@dataclass
class Point:
    config: Config
    ok: bool = True
    error: str = ""
    flash_model: int | None = None
    flash_weights: int | None = None
    flash_firmware: int | None = None
    ram: int | None = None
    arena: int | None = None
    estimate: bool = False
    instructions: int | None = None
    weights: int | None = None
    nonzero: int | None = None
    weight_bits: int | None = None
    metric: float | None = None         # top-1 (0..1) or output SQNR in dB
    delta: float | None = None          # top-1 points, or SQNR
    frontier: bool = False
    seconds: float = 0.0
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        c = self.config
        return {"technique": c.technique, "strength": c.strength, "label": c.label, "ok": self.ok,
                "error": self.error, "options": _options_of(c),
                "flash_model_bytes": self.flash_model, "flash_weights_bytes": self.flash_weights,
                "flash_firmware_bytes": self.flash_firmware, "ram_bytes": self.ram,
                "arena_bytes": self.arena, "sizes_are_estimates": self.estimate,
                "instructions": self.instructions, "weights": self.weights,
                "nonzero_weights": self.nonzero,
                "weight_bits": self.weight_bits, "metric": _jnum(self.metric), "delta": _jnum(self.delta),
                "frontier": self.frontier, "seconds": round(self.seconds, 2), **self.details}


def _jnum(v):
    """JSON has no infinities (a transformed model identical to the original has an infinite SQNR)."""
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else "-inf"
    return v


def _num(v):
    return float(v) if isinstance(v, str) else v


def _options_of(c: Config) -> list[str]:
    o = []
    for s in c.low_rank:
        o += ["--low-rank", s]
    for s in c.prune:
        o += ["--prune", s]
    for s in c.binarize:
        o += ["--binarize", s, "--binarize-mode", c.binarize_mode]
    if c.int8:
        o += ["--quantize", "int8"]
    return o


def plan(is_float: bool, techniques, can_int8: bool) -> list[Config]:
    """The configurations to measure: the model as it is, then each technique at
    each strength (with int8 after it where the model is float and calibration data exists)."""
    cfgs = [Config("baseline", "")]
    tech = set(techniques)
    if is_float and can_int8 and "int8" in tech:
        cfgs.append(Config("int8", "", int8=True))
    if "prune" in tech:
        for p in PRUNE_LEVELS:
            cfgs.append(Config("prune", p, prune=(p,)))
            if is_float and can_int8 and "int8" in tech:
                cfgs.append(Config("prune+int8", p, prune=(p,), int8=True))
    if is_float and "low-rank" in tech:
        for e in LOW_RANK_LEVELS:
            cfgs.append(Config("low-rank", e, low_rank=(e,)))
        if can_int8 and "int8" in tech:
            cfgs.append(Config("low-rank+int8", LOW_RANK_LEVELS[1], low_rank=(LOW_RANK_LEVELS[1],), int8=True))
    if is_float and "binarize" in tech:
        for layers, mode in BINARIZE_LEVELS:
            if mode == "xnor" and not can_int8:
                continue  # xnor needs calibration data too
            cfgs.append(Config("binarize", f"{layers}/{mode}", binarize=(layers,), binarize_mode=mode))
    return cfgs


def explore(model, eval_data, target: str = "cortex-m4", calibration=None, techniques=TECHNIQUES,
            bench: bool = True, eval_samples: int = 300, input_shapes=None, work_dir=None,
            ) -> dict:
    from ..passes.compress import CompressConfig, parameters
    from ..passes.binarize import BinarizeConfig
    from ..passes.lowrank import LowRankConfig
    from ..passes.prune import PruneConfig
    from ..passes.quantize import QuantConfig
    bad = [t for t in techniques if t not in TECHNIQUES]
    if bad:
        raise EdgecError(f"unknown technique {bad[0]!r} (one of: {', '.join(TECHNIQUES)})")
    tgt = targets.load(target)
    g0 = lower(load(model, input_shapes))
    is_float = any(t.dtype == "float32" for t in g0.tensors.values() if t.is_const) and \
        not any(t.quant is not None and not t.is_const for t in g0.tensors.values())
    ds = data.load(g0, eval_data, "eval", max_samples=eval_samples, targets=True, allow_nan=False)
    cal = calibration if calibration is not None else eval_data
    notes = []
    if calibration is None and is_float:
        notes.append("no --calibration: int8 and --binarize xnor calibrate on the evaluation data "
                     "(optimistic; give separate calibration data for an honest number)")
    cfgs = plan(is_float, techniques, can_int8=cal is not None)
    tmp = tempfile.TemporaryDirectory(prefix="edgec-explore-") if work_dir is None else None
    work = Path(work_dir or tmp.name)
    points = []
    try:
        with progress_bar.task("explore", len(cfgs)) as bar:
            for i, c in enumerate(cfgs):
                t0 = time.time()
                p = Point(c)
                try:
                    cc = CompressConfig(
                        low_rank=LowRankConfig.parse(c.low_rank) if c.low_rank else None,
                        prune=PruneConfig.parse(c.prune) if c.prune else None,
                        binarize=BinarizeConfig(layers=c.binarize, mode=c.binarize_mode,
                                                calibration=str(cal) if c.binarize_mode == "xnor" else None)
                        if c.binarize else None)
                    q = QuantConfig(calibration=str(cal)) if c.int8 else None
                    # a point that does not fit the part is measured and marked, not refused
                    opts = Options(target=target, name="model", compress=cc if cc.any() else None, quantize=q,
                                   fit_check=False)
                    bundle, g = compile_full(g0, opts)
                    pr = parameters(g)
                    p.weights, p.weight_bits = pr["weights"], pr["weight_bits"]
                    p.nonzero = pr["nonzero_weights"]
                    acc = evaluate_transformed(g0, g, ds)
                    if "top1" in acc:
                        p.metric = acc["top1"]["quantized"]
                        p.delta = acc["top1"]["delta_points"]
                        p.details["metric_name"] = "top-1"
                    else:
                        sq = acc["outputs"][0]["sqnr_db"]
                        p.metric = float(sq) if not isinstance(sq, str) else (math.inf if sq == "inf" else -math.inf)
                        p.delta = p.metric
                        p.details["metric_name"] = "output SQNR dB"
                    _measure(p, bundle, g, tgt, work / f"p{i}", ds, bench)
                    p.details["transformations"] = bundle.report["transformations"]
                    if bundle.report.get("sparse"):
                        p.details["sparse_layers"] = bundle.report["sparse"]["layers"]
                except Exception as e:  # noqa: BLE001 - one point failing does not stop the exploration
                    p.ok = False
                    p.error = (str(e).splitlines() or [type(e).__name__])[0][:300]
                p.seconds = time.time() - t0
                points.append(p)
                bar.advance(1, c.label)
    finally:
        if tmp is not None:
            tmp.cleanup()
    _mark_frontier(points)
    base = next((p for p in points if p.config.technique == "baseline" and p.ok), None)
    metric = next((p.details.get("metric_name") for p in points if p.ok), None)
    return {"schema": SCHEMA, "model": Path(model).name, "target": tgt.name,
            "eval": {"source": ds.source, "samples": len(ds.samples), "labels": ds.labels is not None},
            "metric": metric, "notes": notes,
            "baseline": base.to_json() if base else None,
            "points": [p.to_json() for p in points]}


def _measure(p: Point, bundle, g, tgt, work: Path, ds, bench: bool) -> None:
    """Flash / RAM (and instructions) of the compiled model on the target."""
    rep = bundle.report
    if tgt.is_host or tgt.cc is None:
        p.estimate = True
        p.flash_weights = rep["weights_bytes"]
        p.flash_model = rep["weights_bytes"]
        p.ram = rep["estimate"]["ram_bytes"]
        p.arena = rep["arena_bytes"]
        return
    bdir = bundle.write(work / "bundle")
    sample = data.encode(g, ds.samples[:1], what="eval")
    expected = expected_outputs(g, sample)
    run = bench and tgt.qemu is not None
    fw = firmware.build(bdir, rep, tgt, work / "fw", samples=sample, expected=expected, bench=run,
                        memory="emulator" if run else "unbounded")
    sizes = elfsize.breakdown(elfsize.read(fw.elf), fw.prefix)
    f, r = sizes["flash"], sizes["ram"]
    p.flash_weights = f["weights"]
    p.flash_model = f["weights"] + f["model_code"]
    p.flash_firmware = f["total"] - f["test_data"]
    p.arena = r["arena"]
    p.ram = r["total"] - r["stack_reserved"]
    if run:
        from .bench import _ticks_per_sample
        res = fw.run(timeout=firmware.run_timeout(rep, 2), icount=True)
        if not res.ok:
            raise EdgecError(f"{tgt.name}: {res.describe()}")
        ticks = _ticks_per_sample(res)
        p.instructions = round(ticks[0] * 1e9 / tgt.qemu.cpu_hz)
        st = res.fields("STACK")
        p.ram += int(st.get("used", 0))


def _mark_frontier(points) -> None:
    ok = [p for p in points if p.ok and p.flash_model is not None and p.metric is not None]
    for p in ok:
        p.frontier = not any(
            (q.flash_model <= p.flash_model and q.metric >= p.metric) and
            (q.flash_model < p.flash_model or q.metric > p.metric) for q in ok if q is not p)


# --- output ---------------------------------------------------------------------------

def _fmt_metric(v, name) -> str:
    v = _num(v)
    if v is None:
        return "-"
    if name == "top-1":
        return f"{100 * v:.2f}%"
    return f"{v:.2f} dB" if math.isfinite(v) else ("inf" if v > 0 else "-inf")


def table_rows(res: dict) -> list[list[str]]:
    rows = []
    name = res.get("metric")
    for p in res["points"]:
        if not p["ok"]:
            rows.append([p["label"], "-", "-", "-", "-", "-", "-", "-", f"failed: {p['error']}"])
            continue
        d = _num(p["delta"])
        delta = "-" if d is None else (f"{d:+.2f} pt" if name == "top-1" else "")
        rows.append([
            p["label"],
            f"{p['flash_model_bytes']:,}" + ("*" if p["sizes_are_estimates"] else ""),
            f"{p['flash_weights_bytes']:,}",
            f"{p['ram_bytes']:,}" + ("*" if p["sizes_are_estimates"] else ""),
            f"{p['instructions']:,}" if p["instructions"] is not None else "-",
            f"{p['nonzero_weights']:,}",
            _fmt_metric(p["metric"], name), delta,
            "frontier" if p["frontier"] else ""])
    return rows


COLUMNS = ["configuration", "model flash B", "weights B", "RAM B", "instructions", "non-zero weights",
           "accuracy", "delta", ""]


def render_html(res: dict) -> str:
    """One self-contained page: the plot (inline SVG, no scripts) and the table."""
    pts = [p for p in res["points"] if p["ok"] and p["flash_model_bytes"] and p["metric"] is not None
           and math.isfinite(_num(p["metric"]))]
    W, H, L, R, T, B = 760, 420, 80, 20, 30, 60
    name = res.get("metric") or "accuracy"
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect x="0" y="0" width="{W}" height="{H}" fill="#fff"/>']
    if pts:
        xs = [math.log10(p["flash_model_bytes"]) for p in pts]
        ys = [p["metric"] * (100 if name == "top-1" else 1) for p in pts]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if x1 - x0 < 1e-9:
            x0, x1 = x0 - 0.5, x1 + 0.5
        if y1 - y0 < 1e-9:
            y0, y1 = y0 - 1, y1 + 1
        padx, pady = (x1 - x0) * 0.08, (y1 - y0) * 0.1
        x0, x1, y0, y1 = x0 - padx, x1 + padx, y0 - pady, y1 + pady

        def px(v):
            return L + (v - x0) / (x1 - x0) * (W - L - R)

        def py(v):
            return H - B - (v - y0) / (y1 - y0) * (H - T - B)
        svg.append(f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="#333"/>')
        svg.append(f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="#333"/>')
        for k in range(6):
            v = x0 + (x1 - x0) * k / 5
            svg.append(f'<text x="{px(v):.1f}" y="{H - B + 16}" text-anchor="middle">{10 ** v:,.0f}</text>')
            u = y0 + (y1 - y0) * k / 5
            svg.append(f'<text x="{L - 6}" y="{py(u) + 4:.1f}" text-anchor="end">{u:.1f}</text>')
            svg.append(f'<line x1="{L}" y1="{py(u):.1f}" x2="{W - R}" y2="{py(u):.1f}" stroke="#eee"/>')
        svg.append(f'<text x="{(L + W - R) / 2}" y="{H - 18}" text-anchor="middle">model flash, bytes '
                   f'(log scale)</text>')
        svg.append(f'<text x="16" y="{(T + H - B) / 2}" text-anchor="middle" '
                   f'transform="rotate(-90 16 {(T + H - B) / 2})">{html.escape(name)}'
                   f'{" %" if name == "top-1" else ""}</text>')
        front = sorted([(px(x), py(y)) for x, y, p in zip(xs, ys, pts) if p["frontier"]])
        if len(front) > 1:
            svg.append('<polyline fill="none" stroke="#d33" stroke-width="1.5" points="' +
                       " ".join(f"{a:.1f},{b:.1f}" for a, b in front) + '"/>')
        for x, y, p in zip(xs, ys, pts):
            col = "#d33" if p["frontier"] else "#36c"
            svg.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4" fill="{col}">'
                       f'<title>{html.escape(p["label"])}</title></circle>')
            svg.append(f'<text x="{px(x) + 6:.1f}" y="{py(y) - 5:.1f}" fill="#555">'
                       f'{html.escape(p["label"])}</text>')
    else:
        svg.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no point to plot</text>')
    svg.append("</svg>")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>"
                     for r in table_rows(res))
    notes = "".join(f"<p class=note>{html.escape(n)}</p>" for n in res.get("notes", []))
    est = any(p["sizes_are_estimates"] for p in res["points"] if p["ok"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>edgec explore: {html.escape(res['model'])}</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
.note {{ color: #665; font-size: 13px; }}
</style></head><body>
<h1>Size / accuracy trade-off: {html.escape(res['model'])}</h1>
<p>Target {html.escape(res['target'])}; accuracy ({html.escape(name)}) on {res['eval']['samples']} samples of
{html.escape(Path(res['eval']['source']).name)} against the original model. Red: the frontier (no other
configuration has less flash and more accuracy).</p>
{notes}
{''.join(svg)}
<table><tr>{head}</tr>
{body}
</table>
<p class=note>Model flash = weights + kernel code of the linked firmware{' (* = compiler estimate: constants only, host target)' if est else ''};
RAM = static RAM of the firmware plus its measured stack; instructions per inference from QEMU -icount (second inference).</p>
</body></html>
"""
