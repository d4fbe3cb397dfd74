"""Size reports for people: a rich terminal table, Markdown (CI job summaries,
PR comments) and one self-contained HTML page (inline CSS and SVG, no scripts
or external assets) with treemaps and stacked bars of flash and RAM by layer
and kind.  Input: :func:`edgec.report.size.size_report` (and optionally the
:class:`edgec.report.size.CheckResult` of a budget check)."""
from __future__ import annotations

import html
import json

from rich.markup import escape as esc

from .size import FLASH_PARTS, RAM_PARTS

COLORS = {
    # flash
    "weights": "#3b7dd8", "kernel_code": "#f0a030", "model_runtime": "#e0702a",
    "model_constants": "#7fb0ea", "app": "#2ea87a", "test_data": "#a8a29e", "libc": "#8b6cd9",
    "unattributed": "#d6d3d1",
    # RAM
    "arena": "#3b7dd8", "model_other": "#7fb0ea", "stack": "#78869b", "heap": "#a3aec0",
    "free": "#eef2f7",
}
SHORT = {
    "weights": "weights", "kernel_code": "kernel code", "model_runtime": "model runtime",
    "model_constants": "model constants", "app": "application", "test_data": "test vectors",
    "libc": "C library", "unattributed": "unattributed", "arena": "arena",
    "model_other": "model state", "stack": "stack", "heap": "heap",
}


def _b(n) -> str:
    return "-" if n is None else f"{n:,}"


def _pct(part, total) -> str:
    return f"{100.0 * part / total:.1f}%" if total else "-"


def _kib(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    if n >= 1 << 10:
        return f"{n / 1024:.1f} KiB"
    return f"{n} B"


def _multi(rep: dict) -> bool:
    """A firmware with several models (``models`` has one entry per bundle)."""
    return len(rep.get("models") or []) > 1


def _arena_note(m: dict) -> str:
    """A model's arena, or why the ELF has none of its own."""
    a = m["arena"]
    if a.get("bytes"):
        return f"{a['bytes']:,}"
    if a.get("planned_bytes"):
        return f"0 (external, needs {a['planned_bytes']:,})"
    return "0"


def _owner(rep: dict, s: dict) -> str:
    """A symbol's owner as the tables show it: ``layer 3``, with the model's name first
    in a firmware with several models (``kws layer 3``)."""
    who = f"{s['model']} " if _multi(rep) and s.get("model") else ""
    return who + s["owner"] + (f" {s['layer']}" if s["layer"] is not None else "")


def title(rep: dict) -> str:
    t = rep["name"]
    if rep.get("target"):
        t += f" on {rep['target']}"
    return f"{t} ({rep['elf']})"


def write(path, text: str) -> None:
    """Write a report file atomically (one-line EdgecError when it cannot be written)."""
    from ..ir.bundle import write_file
    write_file(path, text)


def render(fmt: str, rep: dict, chk=None, symbols: int = 20) -> str:
    """``fmt`` is json, markdown or html."""
    if fmt == "json":
        return to_json(rep, chk)
    if fmt == "markdown":
        return to_markdown(rep, chk, symbols)
    if fmt == "html":
        return to_html(rep, chk, max(symbols, 30))
    raise ValueError(fmt)


def to_json(rep: dict, chk=None) -> str:
    d = dict(rep)
    if chk is not None:
        d["check"] = chk.to_json()
        if chk.growth is not None:
            d["growth"] = chk.growth
    return json.dumps(d, indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------- terminal

def print_table(con, rep: dict, chk=None, symbols: int = 15) -> None:
    from rich.table import Table
    con.print(f"[bold]{esc(title(rep))}[/bold]" + (f"  [dim]{esc(rep['model'])}[/dim]" if rep.get("model") else ""))
    if rep.get("note"):
        con.print(f"[dim]{esc(rep['note'])}[/dim]")
    fl, rm = rep["flash"], rep["ram"]
    con.print(f"flash [bold]{fl['total']:,} B[/bold] ({_kib(fl['total'])})   "
              f"RAM [bold]{rm['total']:,} B[/bold] ({_kib(rm['total'])})   "
              f"model: flash {rep['model_totals']['flash']:,} B, RAM {rep['model_totals']['ram']:,} B")
    if chk is not None:
        _print_check(con, chk)

    t = Table(title="where it goes", title_justify="left")
    t.add_column("flash", style="bold")
    t.add_column("bytes", justify="right")
    t.add_column("%", justify="right")
    t.add_column("RAM", style="bold")
    t.add_column("bytes", justify="right")
    t.add_column("%", justify="right")
    fparts = [(k, v) for k, v in fl["parts"].items() if v]
    rparts = [(k, v) for k, v in rm["parts"].items() if v]
    for i in range(max(len(fparts), len(rparts))):
        a = fparts[i] if i < len(fparts) else None
        b = rparts[i] if i < len(rparts) else None
        t.add_row(FLASH_PARTS[a[0]] if a else "", _b(a[1]) if a else "",
                  _pct(a[1], fl["total"]) if a else "",
                  RAM_PARTS[b[0]] if b else "", _b(b[1]) if b else "",
                  _pct(b[1], rm["total"]) if b else "")
    t.add_row("[bold]total[/bold]", f"[bold]{fl['total']:,}[/bold]", "",
              "[bold]total[/bold]", f"[bold]{rm['total']:,}[/bold]", "")
    con.print(t)
    if _multi(rep):
        _print_models(con, rep)

    t = Table(title="sections (as binutils size -A)", title_justify="left")
    for c, j in (("section", "left"), ("address", "right"), ("size", "right"), ("in", "left"),
                 ("unattributed", "right")):
        t.add_column(c, justify=j)
    for s in rep["sections"]:
        where = " + ".join(w for w, v in (("flash", s["flash"]), ("RAM", s["ram"])) if v)
        t.add_row(esc(s["name"]), f"0x{s['addr']:08x}", f"{s['size']:,}", where, _b(s["unattributed"]))
    bk = rep["berkeley"]
    con.print(t)
    con.print(f"[dim]text {bk['text']:,}  data {bk['data']:,}  bss {bk['bss']:,} "
              f"(the columns of binutils size); flash = text + data, RAM = data + bss"
              + (f" + {rm['unbacked_reservations']:,} reserved by linker symbols"
                 if rm["unbacked_reservations"] else "") + "[/dim]")

    if rep["layers"]:
        multi = _multi(rep)
        arenas = {m["name"]: m["arena"] for m in rep.get("models") or []}
        t = Table(title="per layer", title_justify="left")
        for c, j in ((("model", "left"),) if multi else ()) + (
                ("#", "right"), ("op", "left"), ("name", "left"), ("code", "right"),
                ("weights", "right"), ("flash", "right"), ("% flash", "right"),
                ("arena out", "right"), ("live", "right"), ("at peak", "right")):
            t.add_column(c, justify=j)
        a = rep["arena"]
        for L in rep["layers"]:
            peak = arenas.get(L.get("model"), a).get("peak_layer") == L["index"]
            t.add_row(*([esc(L.get("model", ""))] if multi else []),
                      str(L["index"]), esc(L["op"]), esc(L["name"][:28]), _b(L["code_bytes"]),
                      _b(L["weights_bytes"]), _b(L["flash_bytes"]), _pct(L["flash_bytes"], fl["total"]),
                      _b(L["arena_output_bytes"]),
                      (f"[bold]{_b(L['arena_live_bytes'])}[/bold]" if peak else _b(L["arena_live_bytes"])),
                      _b(L["arena_peak_share"]))
        con.print(t)
        diff = [L for L in rep["layers"] if L["weights_bytes_planned"] is not None
                and L["weights_bytes_planned"] != L["weights_bytes"]]
        if diff:
            planned = sum(L["weights_bytes_planned"] for L in diff)
            got = sum(L["weights_bytes"] for L in diff)
            con.print(f"[dim]layer{'s' if len(diff) > 1 else ''} {', '.join(str(L['index']) for L in diff)}: "
                      f"{planned:,} B of constants planned (report.json), {got:,} B in the ELF: the compiler "
                      f"folded small arrays into the code, or the linker dropped unused ones.[/dim]")
        for who, a in ([(m["name"] + ": ", m["arena"]) for m in rep["models"]] if multi else [("", a)]):
            if a.get("peak_layer") is not None:
                con.print(f"[dim]{esc(who)}arena {a['bytes']:,} B (planned {_b(a['planned_bytes'])}, "
                          f"lifetime lower bound {_b(a['lower_bound'])}); most live at layer "
                          f"{a['peak_layer']}: {_b(a['peak_live_bytes'])} B. 'at peak': the bytes of each "
                          f"layer's outputs live at that moment.[/dim]")
    if symbols:
        t = Table(title=f"largest symbols (top {symbols} of {len(rep['symbols'])})", title_justify="left")
        for c, j in (("symbol", "left"), ("bytes", "right"), ("section", "left"), ("kind", "left"),
                     ("owner", "left")):
            t.add_column(c, justify=j)
        for s in rep["symbols"][:symbols]:
            owner = _owner(rep, s)
            t.add_row(esc(s["name"][:48]), f"{s['bytes']:,}", esc(s["section"]), s["kind"], owner)
        con.print(t)
    if chk is not None and chk.growth is not None:
        _print_growth(con, chk.growth)


def _print_models(con, rep: dict) -> None:
    from rich.table import Table
    t = Table(title="per model", title_justify="left")
    for c, j in (("model", "left"), ("weights", "right"), ("kernel code", "right"), ("runtime", "right"),
                 ("flash", "right"), ("% flash", "right"), ("arena", "right"), ("other RAM", "right"),
                 ("RAM", "right"), ("layers", "right")):
        t.add_column(c, justify=j)
    fl, rm = rep["flash"], rep["ram"]
    for m in rep["models"]:
        f, r = m["flash"], m["ram"]
        t.add_row(esc(m["name"]), f"{f['weights']:,}", f"{f['kernel_code']:,}",
                  f"{f['model_runtime'] + f['model_constants']:,}", f"[bold]{f['total']:,}[/bold]",
                  _pct(f["total"], fl["total"]), _arena_note(m), f"{r['model_other']:,}",
                  f"[bold]{r['total']:,}[/bold]", str(m["layers"]))
    sh = rep.get("models_shared") or {}
    if sh.get("flash") or sh.get("ram"):
        t.add_row("shared runtime", "", "", "", f"{sh['flash']:,}", _pct(sh["flash"], fl["total"]), "",
                  "", f"{sh['ram']:,}", "")
    mt = rep["model_totals"]
    t.add_row("[bold]all models[/bold]", "", "", "", f"[bold]{mt['flash']:,}[/bold]",
              _pct(mt["flash"], fl["total"]), "", "", f"[bold]{mt['ram']:,}[/bold]", "")
    con.print(t)
    ext = [m["name"] for m in rep["models"] if not m["arena"].get("bytes") and m["arena"].get("planned_bytes")]
    if ext:
        con.print(f"[dim]{esc(', '.join(ext))}: no arena of {'its' if len(ext) == 1 else 'their'} own in "
                  f"the ELF (<NAME>_EXTERNAL_ARENA): the application's buffer is counted as "
                  f"application data.[/dim]")


def _print_check(con, chk) -> None:
    from rich.table import Table
    if chk.rows:
        t = Table(title=f"budgets ({esc(chk.source)})" if chk.source else "budgets", title_justify="left")
        for c, j in (("budget", "left"), ("used", "right"), ("limit", "right"), ("headroom", "right"),
                     ("used %", "right"), ("", "left")):
            t.add_column(c, justify=j)
        for r in chk.rows:
            status = "[green]ok[/green]" if r["ok"] else f"[red bold]OVER by {-r['headroom']:,} B[/red bold]"
            t.add_row("flash" if r["budget"] == "flash" else "RAM", f"{r['used']:,}", f"{r['limit']:,}",
                      f"{r['headroom']:,}", f"{r['percent_used']:.2f}%" if r["percent_used"] is not None else "-",
                      status)
        con.print(t)


def _print_growth(con, g: dict) -> None:
    from rich.table import Table
    opts = g["baseline"].get("options") or {}
    t = Table(title=esc(f"growth since the baseline ({g['baseline'].get('elf')}"
                        + (f", opt-level {opts.get('opt_level')}" if opts.get("opt_level") else "") + ")"),
              title_justify="left")
    for c, j in (("", "left"), ("baseline", "right"), ("now", "right"), ("growth", "right"), ("%", "right")):
        t.add_column(c, justify=j)

    def row(label, d, bold=False):
        gr = d["growth"]
        col = "red" if gr > 0 else ("green" if gr < 0 else "dim")
        lab = f"[bold]{label}[/bold]" if bold else label
        t.add_row(lab, f"{d['old']:,}", f"{d['new']:,}", f"[{col}]{gr:+,}[/{col}]",
                  f"{d['percent']:+.2f}%" if d["percent"] is not None else "-")
    row("flash", g["flash"], True)
    row("RAM", g["ram"], True)
    for name, d in g["sections"].items():
        if d["growth"] or d["old"] != 0:
            row(f"  {esc(name)}", d)
    con.print(t)
    changed = [L for L in g["layers"] if L["changed"]]
    if changed:
        t = Table(title="layers that changed", title_justify="left")
        for c, j in (("#", "right"), ("op", "left"), ("code", "right"), ("weights", "right"),
                     ("flash growth", "right")):
            t.add_column(c, justify=j)
        for L in changed:
            t.add_row((esc(L["model"]) + " " if L.get("model") and len(g.get("models") or {}) > 1 else "")
                      + str(L["index"]), esc(L["op"]), f"{L['code_bytes']['growth']:+,}",
                      f"{L['weights_bytes']['growth']:+,}", f"{L['flash_bytes']['growth']:+,}")
        con.print(t)
    else:
        con.print("[dim]no layer changed size[/dim]")


# ---------------------------------------------------------------- markdown

def _md(s) -> str:
    return str(s).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def to_markdown(rep: dict, chk=None, symbols: int = 20) -> str:
    fl, rm = rep["flash"], rep["ram"]
    out = [f"### edgec size: `{_md(rep['name'])}`" + (f" on {_md(rep['target'])}" if rep.get("target") else "")
           + f" ({_md(rep['elf'])})", ""]
    if rep.get("model"):
        o = rep.get("options") or {}
        flags = (f"-O{o['opt_level']}" if o.get("opt_level") else "") + (" LTO" if o.get("lto") else "")
        out.append(f"Model `{_md(rep['model'])}`" + (f", built with `{_md(flags.strip())}`" if flags else "") + ".")
        out.append("")
    if rep.get("note"):
        out += [f"_{_md(rep['note'])}_", ""]
    rows = {r["budget"]: r for r in (chk.rows if chk else [])}
    if chk is not None:
        out.append(("**Within budget.**" if chk.ok else "**Over budget:** " + "; ".join(map(_md, chk.failures)) + ".")
                   + (f" Budgets: {_md(chk.source)}." if chk.source and chk.rows else ""))
        out.append("")
    out += ["| | used | budget | headroom | |", "|---|---:|---:|---:|---|"]
    for key, label in (("flash", "flash"), ("ram", "RAM")):
        r = rows.get(key)
        used = rep[key]["total"]
        if r:
            status = "ok" if r["ok"] else f"**over by {-r['headroom']:,} B**"
            out.append(f"| **{label}** | {used:,} B | {r['limit']:,} B | {r['headroom']:,} B | {status} |")
        else:
            out.append(f"| **{label}** | {used:,} B | - | - | |")
    out.append("")
    for key, parts, labels in (("flash", fl, FLASH_PARTS), ("RAM", rm, RAM_PARTS)):
        items = [f"{labels[k]} {v:,} ({_pct(v, parts['total'])})" for k, v in parts["parts"].items() if v]
        out.append(f"**{key}** {parts['total']:,} B = " + " + ".join(items))
        out.append("")
    if _multi(rep):
        out += ["**Per model**", "",
                "| model | weights | kernel code | runtime | flash | arena | other RAM | RAM | layers |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for m in rep["models"]:
            f, r = m["flash"], m["ram"]
            out.append(f"| `{_md(m['name'])}` | {f['weights']:,} | {f['kernel_code']:,} | "
                       f"{f['model_runtime'] + f['model_constants']:,} | **{f['total']:,}** | "
                       f"{_arena_note(m)} | {r['model_other']:,} | **{r['total']:,}** | {m['layers']} |")
        sh = rep.get("models_shared") or {}
        if sh.get("flash") or sh.get("ram"):
            out.append(f"| shared runtime | | | | {sh['flash']:,} | | | {sh['ram']:,} | |")
        mt = rep["model_totals"]
        out += [f"| **all models** | | | | **{mt['flash']:,}** | | | **{mt['ram']:,}** | |", ""]
    if chk is not None and chk.growth is not None:
        out += _md_growth(chk.growth, chk)
    out += ["<details><summary>Sections</summary>", "",
            "| section | address | size | flash | RAM |", "|---|---:|---:|---:|---:|"]
    for s in rep["sections"]:
        out.append(f"| `{_md(s['name'])}` | 0x{s['addr']:08x} | {s['size']:,} | {s['flash']:,} | {s['ram']:,} |")
    bk = rep["berkeley"]
    out += ["", f"text {bk['text']:,}, data {bk['data']:,}, bss {bk['bss']:,} (as binutils `size`).",
            "", "</details>", ""]
    if rep["layers"]:
        multi = _multi(rep)
        out += ["<details><summary>Per layer</summary>", "",
                ("| model " if multi else "") + "| # | op | code | weights | flash | arena out | live | at arena peak |",
                ("|---" if multi else "") + "|---:|---|---:|---:|---:|---:|---:|---:|"]
        for L in rep["layers"]:
            out.append((f"| `{_md(L.get('model', ''))}` " if multi else "")
                       + f"| {L['index']} | {_md(L['op'])} | {L['code_bytes']:,} | {L['weights_bytes']:,} | "
                       f"{L['flash_bytes']:,} | {_b(L['arena_output_bytes'])} | {_b(L['arena_live_bytes'])} | "
                       f"{_b(L['arena_peak_share'])} |")
        out.append("")
        for who, a in ([(f"`{_md(m['name'])}`: arena", m["arena"]) for m in rep["models"]] if multi
                       else [("Arena", rep["arena"])]):
            out.append(f"{who} {a['bytes']:,} B" + (f", most live at layer {a['peak_layer']} "
                                                   f"({_b(a['peak_live_bytes'])} B)"
                                                   if a.get("peak_layer") is not None else "") + ".")
        out += ["", "</details>", ""]
    if symbols:
        out += [f"<details><summary>Largest symbols (top {symbols})</summary>", "",
                "| symbol | bytes | section | owner |", "|---|---:|---|---|"]
        for s in rep["symbols"][:symbols]:
            owner = _owner(rep, s)
            out.append(f"| `{_md(s['name'])}` | {s['bytes']:,} | `{_md(s['section'])}` | {owner} |")
        out += ["", "</details>", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _md_growth(g: dict, chk) -> list[str]:
    opts = g["baseline"].get("options") or {}
    out = [f"**Growth since the baseline** ({_md(g['baseline'].get('elf'))}"
           + (f", opt-level {_md(opts.get('opt_level'))}" if opts.get("opt_level") else "") + ")", "",
           "| | baseline | now | growth | % |", "|---|---:|---:|---:|---:|"]

    def row(label, d):
        pct = f"{d['percent']:+.2f}%" if d["percent"] is not None else "-"
        out.append(f"| {label} | {d['old']:,} | {d['new']:,} | {d['growth']:+,} | {pct} |")
    row("**flash**", g["flash"])
    row("**RAM**", g["ram"])
    for name, d in g["sections"].items():
        if d["growth"] or d["old"]:
            row(f"`{_md(name)}`", d)
    changed = [L for L in g["layers"] if L["changed"]]
    multi = len(g.get("models") or {}) > 1
    for L in changed:
        row(("`" + _md(L["model"]) + "` " if multi and L.get("model") else "")
            + f"layer {L['index']} {_md(L['op'])}", L["flash_bytes"])
    if multi:
        for name, d in g["models"].items():
            row(f"`{_md(name)}` flash", d["flash"])
            row(f"`{_md(name)}` RAM", d["ram"])
    if chk.growth_rows:
        lim = chk.growth_rows[0]["limit"]
        out += ["", f"Allowed growth: {_md(lim)}."]
    out.append("")
    return out


# ---------------------------------------------------------------- HTML

def _squarify(items: list[tuple[float, object]], x: float, y: float, w: float, h: float):
    """Squarified treemap (Bruls, Huizing, van Wijk): [(value, key)] -> [(key, x, y, w, h)].
    ``items`` sorted by decreasing value; values > 0."""
    out = []
    items = [(v, k) for v, k in items if v > 0]
    total = sum(v for v, _ in items)
    if not items or w <= 0 or h <= 0:
        return out
    scale = w * h / total
    rest = [(v * scale, k) for v, k in items]

    def worst(row, side):
        s = sum(a for a, _ in row)
        mx = max(a for a, _ in row)
        mn = min(a for a, _ in row)
        return max(side * side * mx / (s * s), (s * s) / (side * side * mn))

    while rest:
        side = min(w, h)
        row = [rest[0]]
        i = 1
        while i < len(rest) and worst(row + [rest[i]], side) <= worst(row, side):
            row.append(rest[i])
            i += 1
        rest = rest[i:]
        s = sum(a for a, _ in row)
        if w >= h:  # column on the left
            cw = s / h if h else 0
            cy = y
            for a, k in row:
                ch = a / cw if cw else 0
                out.append((k, x, cy, cw, ch))
                cy += ch
            x += cw
            w -= cw
        else:       # row on top
            rh = s / w if w else 0
            cx = x
            for a, k in row:
                cwid = a / rh if rh else 0
                out.append((k, cx, y, cwid, rh))
                cx += cwid
            y += rh
            h -= rh
    return out


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _label(text: str, x, y, w, h, size=11, color="#fff", bold=False) -> str:
    if w < 28 or h < size + 4:
        return ""
    maxch = int((w - 6) / (size * 0.6))
    if maxch < 3:
        return ""
    t = text if len(text) <= maxch else text[: maxch - 1] + "\u2026"
    wt = ' font-weight="600"' if bold else ""
    return (f'<text x="{x + 4:.1f}" y="{y + size + 2:.1f}" font-size="{size}" fill="{color}"{wt}>'
            f'{_esc(t)}</text>')


def _treemap_svg(groups: list[dict], total: int, width=960, height=380, label="") -> str:
    """groups: [{"key", "label", "color", "children": [{"label", "value", "color", "title"}]}]."""
    parts = [f'<svg class="treemap" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="{_esc(label)}" xmlns="http://www.w3.org/2000/svg">']
    gitems = sorted(((sum(c["value"] for c in g["children"]), i) for i, g in enumerate(groups)),
                    key=lambda t: (-t[0], t[1]))
    for gi, gx, gy, gw, gh in _squarify(gitems, 0, 0, width, height):
        g = groups[gi]
        gval = sum(c["value"] for c in g["children"])
        pad = 1.5
        top = 16 if (gh > 40 and gw > 60 and len(g["children"]) > 1) else 0
        parts.append(f'<g class="group" data-group="{_esc(g["key"])}">')
        parts.append(f'<rect x="{gx:.1f}" y="{gy:.1f}" width="{gw:.1f}" height="{gh:.1f}" '
                     f'fill="{g["color"]}" stroke="#fff" stroke-width="2"><title>{_esc(g["label"])}: '
                     f'{gval:,} B ({_pct(gval, total)})</title></rect>')
        if top:
            parts.append(_label(f'{g["label"]}  {gval:,} B', gx, gy - 1, gw, 16, 11, "#fff", True))
        citems = sorted(((c["value"], i) for i, c in enumerate(g["children"])), key=lambda t: (-t[0], t[1]))
        for ci, cx, cy, cw, ch in _squarify(citems, gx + pad, gy + pad + top, gw - 2 * pad,
                                            gh - 2 * pad - top):
            c = g["children"][ci]
            parts.append(f'<rect class="leaf" x="{cx:.1f}" y="{cy:.1f}" width="{max(cw, 0):.1f}" '
                         f'height="{max(ch, 0):.1f}" fill="{c["color"]}" stroke="#fff" stroke-width="0.7">'
                         f'<title>{_esc(c["title"])}</title></rect>')
            parts.append(_label(c["label"], cx, cy, cw, ch, 10, c.get("text", "#fff")))
            if ch >= 30 and cw >= 48:
                parts.append(f'<text x="{cx + 4:.1f}" y="{cy + 25:.1f}" font-size="9.5" '
                             f'fill="{c.get("text", "#fff")}" opacity="0.85">{c["value"]:,} B</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _shade(hex_color: str, f: float) -> str:
    """Lighten (f > 0) or darken (f < 0) a #rrggbb color."""
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    if f >= 0:
        r, g, b = (int(c + (255 - c) * f) for c in (r, g, b))
    else:
        r, g, b = (int(c * (1 + f)) for c in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


def _symbol_children(rep: dict, owner: str, total_bytes: int, color: str, what: str, limit=10,
                     section_filter=None) -> list[dict]:
    syms = [s for s in rep["symbols"] if s["owner"] == owner and s["bytes"] > 0
            and (section_filter is None or section_filter(s))]
    kids = []
    for k, s in enumerate(syms[:limit]):
        kids.append({"label": s["name"], "value": s["bytes"], "color": _shade(color, 0.08 * (k % 3)),
                     "title": f"{s['name']} ({s['section']}): {s['bytes']:,} B"})
    rest = total_bytes - sum(c["value"] for c in kids)
    if rest > 0:
        kids.append({"label": f"other {what}", "value": rest, "color": _shade(color, 0.3),
                     "title": f"other {what}: {rest:,} B (smaller symbols, literals)"})
    return kids


def _flash_groups(rep: dict) -> list[dict]:
    parts = rep["flash"]["parts"]
    flash_secs = {s["name"] for s in rep["sections"] if s["flash"]}
    in_flash = lambda s: s["section"] in flash_secs  # noqa: E731
    groups = []
    multi = _multi(rep)
    for L in rep["layers"]:
        if not L["flash_bytes"]:
            continue
        kids = []
        who = f"{L['model']} " if multi else ""
        lab = f"{who}L{L['index']} {L['op']}"
        if L["weights_bytes"]:
            kids.append({"label": f"{lab} weights", "value": L["weights_bytes"], "color": COLORS["weights"],
                         "title": f"{who}layer {L['index']} {L['op']} {L['name']}: weights "
                                  f"{L['weights_bytes']:,} B"})
        if L["code_bytes"]:
            kids.append({"label": f"{lab} code", "value": L["code_bytes"], "color": COLORS["kernel_code"],
                         "title": f"{who}layer {L['index']} {L['op']} {L['name']}: kernel code "
                                  f"{L['code_bytes']:,} B"})
        groups.append({"key": f"layer-{L['model']}-{L['index']}" if multi else f"layer{L['index']}",
                       "label": f"{who}layer {L['index']} {L['op']}", "color": "#1f4f8f", "children": kids})
    runtimes = ([(m["flash"], f"model-{m['name']}", f"{m['name']} ") for m in rep["models"]] if multi
                else [(parts, "model", "")])
    if multi and rep.get("models_shared", {}).get("flash"):
        runtimes.append(({"model_runtime": rep["models_shared"]["flash"], "model_constants": 0},
                         "model-shared", "shared "))
    for mparts, gkey, who in runtimes:
        if not mparts["model_runtime"] + mparts["model_constants"]:
            continue
        kids = []
        for key in ("model_runtime", "model_constants"):
            if mparts[key]:
                kids.append({"label": who + SHORT[key], "value": mparts[key], "color": COLORS[key],
                             "title": f"{who}{FLASH_PARTS[key]}: {mparts[key]:,} B"})
        groups.append({"key": gkey, "label": f"{who}model runtime", "color": "#a04a10", "children": kids})
    for key, what in (("app", "application"), ("libc", "C library"), ("test_data", "test vectors")):
        if parts[key]:
            groups.append({"key": key, "label": FLASH_PARTS[key], "color": _shade(COLORS[key], -0.35),
                           "children": _symbol_children(rep, key, parts[key], COLORS[key], what,
                                                        section_filter=in_flash)})
    if parts["unattributed"]:
        groups.append({"key": "unattributed", "label": "unattributed", "color": "#a8a29e",
                       "children": [{"label": "padding", "value": parts["unattributed"],
                                     "color": COLORS["unattributed"], "text": "#333",
                                     "title": f"{FLASH_PARTS['unattributed']}: {parts['unattributed']:,} B"}]})
    return groups


def _ram_groups(rep: dict) -> list[dict]:
    parts = rep["ram"]["parts"]
    ram_secs = {s["name"] for s in rep["sections"] if s["ram"]}
    in_ram = lambda s: s["section"] in ram_secs  # noqa: E731
    groups = []
    if _multi(rep):
        arenas = [(m["ram"]["arena"], m["arena"], [L for L in rep["layers"] if L.get("model") == m["name"]],
                   f"arena-{m['name']}", f"{m['name']} ") for m in rep["models"]]
    else:
        arenas = [(parts["arena"], rep["arena"], rep["layers"], "arena", "")]
    for nbytes, a, layers, key, who in arenas:
        if not nbytes:
            continue
        kids = []
        shares = [L for L in layers if L.get("arena_peak_share")]
        for k, L in enumerate(shares):
            kids.append({"label": f"{who}L{L['index']} {L['op']} out", "value": L["arena_peak_share"],
                         "color": _shade(COLORS["arena"], 0.12 * (k % 3)),
                         "title": f"{who}arena at its peak (layer {a['peak_layer']}): output of layer "
                                  f"{L['index']} {L['op']}, {L['arena_peak_share']:,} B"})
        rest = nbytes - sum(c["value"] for c in kids)
        if rest > 0:
            kids.append({"label": "free at peak" if shares else f"{who}arena", "value": rest,
                         "color": COLORS["free"] if shares else COLORS["arena"],
                         "text": "#555" if shares else "#fff",
                         "title": (f"{who}arena bytes not live at its peak (alignment, fragmentation): "
                                   f"{rest:,} B" if shares else f"{who}arena: {rest:,} B")})
        groups.append({"key": key, "label": f"{who}activation arena"
                       + (f" (at layer {a['peak_layer']}, its peak)" if shares else ""),
                       "color": "#1f4f8f", "children": kids})
    for key in ("stack", "heap"):
        if parts[key]:
            groups.append({"key": key, "label": RAM_PARTS[key], "color": _shade(COLORS[key], -0.3),
                           "children": [{"label": RAM_PARTS[key], "value": parts[key], "color": COLORS[key],
                                         "title": f"{RAM_PARTS[key]}: {parts[key]:,} B"}]})
    for key, what in (("app", "application data"), ("libc", "C library data"),
                      ("model_other", "model state")):
        if parts[key]:
            groups.append({"key": key, "label": RAM_PARTS[key],
                           "color": _shade(COLORS.get(key, "#888888"), -0.35),
                           "children": _symbol_children(rep, key if key != "model_other" else "model",
                                                        parts[key], COLORS.get(key, "#888888"), what,
                                                        section_filter=in_ram)})
    if parts["unattributed"]:
        groups.append({"key": "unattributed", "label": "unattributed", "color": "#a8a29e",
                       "children": [{"label": "padding", "value": parts["unattributed"],
                                     "color": COLORS["unattributed"], "text": "#333",
                                     "title": f"{RAM_PARTS['unattributed']}: {parts['unattributed']:,} B"}]})
    return groups


def _stacked_bar(parts: dict, labels: dict, total: int, budget: int | None, what: str) -> str:
    scale_to = max(total, budget or 0) or 1
    segs = []
    for k, v in parts.items():
        if not v:
            continue
        w = 100.0 * v / scale_to
        segs.append(f'<div class="seg" style="width:{w:.3f}%;background:{COLORS.get(k, "#888")}" '
                    f'title="{_esc(labels[k])}: {v:,} B ({_pct(v, total)})"></div>')
    marker = ""
    if budget:
        left = 100.0 * budget / scale_to
        over = total > budget
        side = " right" if left > 75 else ""
        marker = (f'<div class="budget{" over" if over else ""}{side}" style="left:{left:.3f}%" '
                  f'title="budget {budget:,} B"><span>budget {_kib(budget)}</span></div>')
    legend = "".join(
        f'<li><i style="background:{COLORS.get(k, "#888")}"></i>{_esc(labels[k])} '
        f'<b>{v:,}</b> <small>{_pct(v, total)}</small></li>'
        for k, v in parts.items() if v)
    return (f'<div class="barwrap"><div class="bar" aria-label="{_esc(what)}">{"".join(segs)}{marker}</div>'
            f'<ul class="legend">{legend}</ul></div>')


def _arena_chart(rep: dict, width=960, height=200, model: dict | None = None) -> str:
    """The arena live at each layer (of ``model``, one of ``rep["models"]``, when given)."""
    layers = [L for L in rep["layers"] if L.get("arena_live_bytes") is not None
              and (model is None or L.get("model") == model["name"])]
    a = rep["arena"] if model is None else model["arena"]
    if not layers or not a.get("bytes"):
        return ""
    top = max([a["bytes"]] + [L["arena_live_bytes"] for L in layers]) or 1
    left, bottom, right, topm = 56, 22, 8, 10
    pw, ph = width - left - right, height - bottom - topm
    bw = pw / len(layers)
    out = [f'<svg class="arena" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="arena bytes live at each layer" xmlns="http://www.w3.org/2000/svg">']
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        yv = topm + ph * (1 - frac)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{yv:.1f}" y2="{yv:.1f}" stroke="#e7e5e4"/>')
        out.append(f'<text x="{left - 4}" y="{yv + 3:.1f}" font-size="9" text-anchor="end" fill="#78716c">'
                   f'{_kib(int(top * frac))}</text>')
    for k, L in enumerate(layers):
        live = L["arena_live_bytes"]
        own = min(L.get("arena_output_bytes") or 0, live)
        x = left + k * bw + bw * 0.12
        w = bw * 0.76
        hl = ph * live / top
        ho = ph * own / top
        peak = L["index"] == a.get("peak_layer")
        col = "#1f4f8f" if peak else COLORS["arena"]
        out.append(f'<g><title>layer {L["index"]} {_esc(L["op"])}: {live:,} B live '
                   f'({own:,} B its own output)</title>'
                   f'<rect x="{x:.1f}" y="{topm + ph - hl:.1f}" width="{w:.1f}" height="{hl:.1f}" '
                   f'fill="{_shade(col, 0.45)}"/>'
                   f'<rect x="{x:.1f}" y="{topm + ph - ho:.1f}" width="{w:.1f}" height="{ho:.1f}" fill="{col}"/></g>')
        if bw >= 14 or k % max(1, int(14 / max(bw, 1))) == 0:
            out.append(f'<text x="{x + w / 2:.1f}" y="{height - 8}" font-size="9" text-anchor="middle" '
                       f'fill="#57534e">{L["index"]}</text>')
    ya = topm + ph * (1 - a["bytes"] / top)
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{ya:.1f}" y2="{ya:.1f}" stroke="#b91c1c" '
               f'stroke-dasharray="5 3"/><text x="{width - right - 2}" y="{ya - 3:.1f}" font-size="10" '
               f'text-anchor="end" fill="#b91c1c">arena {a["bytes"]:,} B</text>')
    out.append("</svg>")
    return "".join(out)


_CSS = """
:root{--fg:#1c1917;--mut:#78716c;--bd:#e7e5e4;--bg:#fafaf9}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}main{max-width:1000px;margin:0 auto;padding:24px 20px 48px}
h1{font-size:22px;margin:0 0 2px}h2{font-size:16px;margin:28px 0 8px}.sub{color:var(--mut);margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:10px;margin:12px 0}
.card{background:#fff;border:1px solid var(--bd);border-radius:8px;padding:10px 12px}
.card .k{color:var(--mut);font-size:12px}.card .v{font-size:20px;font-weight:650}.card .s{font-size:12px;color:var(--mut)}
.status{display:inline-block;padding:2px 10px;border-radius:999px;font-weight:600;font-size:13px;margin-left:8px}
.ok{background:#dcfce7;color:#166534}.fail{background:#fee2e2;color:#991b1b}
.barwrap{margin:6px 0 14px}.bar{position:relative;display:flex;height:30px;border-radius:6px;overflow:visible;
background:#f5f5f4;border:1px solid var(--bd)}.seg{height:100%}.seg:first-child{border-radius:5px 0 0 5px}
.budget{position:absolute;top:-6px;bottom:-6px;border-left:2px dashed #166534}.budget.over{border-color:#b91c1c}
.budget span{position:absolute;top:-16px;left:4px;font-size:11px;color:#166534;white-space:nowrap}
.budget.over span{color:#b91c1c}.budget.right span{left:auto;right:6px}
.legend{list-style:none;padding:0;margin:6px 0 0;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12.5px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.legend small{color:var(--mut)}svg{display:block;font-family:inherit}svg.treemap{border-radius:6px;background:#fff}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px;border:1px solid var(--bd)}
th,td{padding:4px 8px;border-bottom:1px solid var(--bd);text-align:right;white-space:nowrap}
th{background:#f5f5f4;font-weight:600}td.l,th.l{text-align:left}tr.peak td{background:#eff6ff}
.mini{display:inline-block;height:9px;vertical-align:0;border-radius:2px}
.cell{display:flex;gap:1px;width:160px}code{font-size:12px}.note{color:var(--mut);font-size:12.5px}
.grow{color:#b91c1c}.shrink{color:#15803d}details{margin:8px 0}summary{cursor:pointer;font-weight:600}
"""


def to_html(rep: dict, chk=None, symbols: int = 30) -> str:
    fl, rm = rep["flash"], rep["ram"]
    budgets = {r["budget"]: r for r in (chk.rows if chk else [])}
    e = _esc
    h = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         f"<title>edgec size: {e(title(rep))}</title><style>{_CSS}</style></head><body><main>"]
    status = ""
    if chk is not None:
        status = (f'<span class="status ok" id="status">within budget</span>' if chk.ok else
                  f'<span class="status fail" id="status">over budget</span>')
    h.append(f"<h1>{e(rep['name'])}{' on ' + e(rep['target']) if rep.get('target') else ''}{status}</h1>")
    sub = [e(rep["elf"])]
    if rep.get("model"):
        sub.append(f"model {e(rep['model'])}")
    if rep.get("options", {}).get("opt_level"):
        sub.append(f"-O{e(rep['options']['opt_level'])}" + (" LTO" if rep["options"].get("lto") else ""))
    sub.append(f"edgec {e(rep['edgec_version'])}")
    h.append(f'<p class="sub">{" · ".join(sub)}</p>')
    if rep.get("note"):
        h.append(f'<p class="note">{e(rep["note"])}</p>')
    if chk is not None and chk.failures:
        h.append("<ul>" + "".join(f'<li class="grow">{e(f)}</li>' for f in chk.failures) + "</ul>")

    def card(k, v, s):
        return f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div><div class="s">{s}</div></div>'
    cards = []
    for key, label in (("flash", "Flash"), ("ram", "RAM")):
        tot = rep[key]["total"]
        b = budgets.get(key)
        s = (f"{b['percent_used']:.1f}% of {_kib(b['limit'])} budget" if b else _kib(tot))
        cards.append(card(label, f"{tot:,} B", s))
    cards.append(card("Model in flash", f"{rep['model_totals']['flash']:,} B",
                      f"{_pct(rep['model_totals']['flash'], fl['total'])} of flash: weights + code"))
    a = rep["arena"]
    cards.append(card("Arena", f"{a['bytes']:,} B",
                      f"lower bound {a['lower_bound']:,} B" if a.get("lower_bound") is not None else "activations"))
    h.append(f'<div class="cards">{"".join(cards)}</div>')

    h.append('<h2>Flash and RAM by kind</h2>')
    h.append(f"<div><b>Flash</b> {fl['total']:,} B</div>")
    h.append(_stacked_bar(fl["parts"], FLASH_PARTS, fl["total"],
                          budgets.get("flash", {}).get("limit"), "flash"))
    h.append(f"<div><b>RAM</b> {rm['total']:,} B</div>")
    h.append(_stacked_bar(rm["parts"], RAM_PARTS, rm["total"], budgets.get("ram", {}).get("limit"), "RAM"))

    h.append('<h2>Flash by layer and kind</h2>')
    h.append('<p class="note">Area is bytes. Blue: a layer\'s weights; amber: its kernel code; '
             'green: application / harness; violet: C library. Hover for exact figures.</p>')
    h.append(_treemap_svg(_flash_groups(rep), fl["total"], label="flash treemap"))
    h.append('<h2>RAM</h2>')
    h.append('<p class="note">The arena is shown at the moment the most of it is live, split by '
             'the layer whose output each live buffer is.</p>')
    h.append(_treemap_svg(_ram_groups(rep), rm["total"], height=240, label="RAM treemap"))
    multi = _multi(rep)
    for m in (rep["models"] if multi else [None]):
        chart = _arena_chart(rep, model=m)
        if chart:
            h.append(f'<h2>{e(m["name"]) + ": a" if m else "A"}rena live at each layer</h2><p class="note">'
                     'Dark: the layer\'s own output; light: other live activations (its inputs, tensors '
                     'kept for later layers); dashed: arena size.</p>')
            h.append(chart)

    if multi:
        h.append('<h2>Per model</h2><table id="models"><tr><th class="l">model</th><th>weights</th>'
                 '<th>kernel code</th><th>runtime</th><th>flash</th><th>% flash</th><th>arena</th>'
                 '<th>other RAM</th><th>RAM</th><th>layers</th></tr>')
        for m in rep["models"]:
            f, r = m["flash"], m["ram"]
            h.append(f"<tr><td class=l><code>{e(m['name'])}</code></td><td>{f['weights']:,}</td>"
                     f"<td>{f['kernel_code']:,}</td><td>{f['model_runtime'] + f['model_constants']:,}</td>"
                     f"<td><b>{f['total']:,}</b></td><td>{_pct(f['total'], fl['total'])}</td>"
                     f"<td>{e(_arena_note(m))}</td><td>{r['model_other']:,}</td><td><b>{r['total']:,}</b></td>"
                     f"<td>{m['layers']}</td></tr>")
        sh = rep.get("models_shared") or {}
        if sh.get("flash") or sh.get("ram"):
            h.append(f"<tr><td class=l>shared runtime</td><td></td><td></td><td></td><td>{sh['flash']:,}</td>"
                     f"<td>{_pct(sh['flash'], fl['total'])}</td><td></td><td></td><td>{sh['ram']:,}</td>"
                     "<td></td></tr>")
        mt = rep["model_totals"]
        h.append(f"<tr><td class=l><b>all models</b></td><td></td><td></td><td></td><td><b>{mt['flash']:,}</b>"
                 f"</td><td>{_pct(mt['flash'], fl['total'])}</td><td></td><td></td><td><b>{mt['ram']:,}</b>"
                 "</td><td></td></tr></table>")

    if rep["layers"]:
        arenas = {m["name"]: m["arena"] for m in rep.get("models") or []}
        mx = max(L["flash_bytes"] for L in rep["layers"]) or 1
        h.append('<h2>Per layer</h2><table id="layers"><tr>' + ('<th class="l">model</th>' if multi else "")
                 + '<th>#</th><th class="l">op</th><th class="l">name</th>'
                 '<th>code</th><th>weights</th><th>flash</th><th class="l"></th><th>arena out</th>'
                 '<th>live</th><th>at peak</th><th>MACs</th></tr>')
        for L in rep["layers"]:
            bar = (f'<div class="cell"><span class="mini" style="width:{100 * L["weights_bytes"] / mx:.1f}%;'
                   f'background:{COLORS["weights"]}"></span><span class="mini" style="width:'
                   f'{100 * L["code_bytes"] / mx:.1f}%;background:{COLORS["kernel_code"]}"></span></div>')
            peak = arenas.get(L.get("model"), a).get("peak_layer")
            cls = ' class="peak"' if L["index"] == peak else ""
            h.append(f"<tr{cls}>" + (f"<td class=l><code>{e(L['model'])}</code></td>" if multi else "")
                     + f"<td>{L['index']}</td><td class=l>{e(L['op'])}</td><td class=l>{e(L['name'][:40])}</td>"
                     f"<td>{L['code_bytes']:,}</td><td>{L['weights_bytes']:,}</td><td>{L['flash_bytes']:,}</td>"
                     f"<td class=l>{bar}</td><td>{_b(L['arena_output_bytes'])}</td><td>{_b(L['arena_live_bytes'])}</td>"
                     f"<td>{_b(L['arena_peak_share'])}</td><td>{_b(L['macs'])}</td></tr>")
        h.append("</table>")

    if chk is not None and chk.growth is not None:
        g = chk.growth
        h.append('<h2>Growth since the baseline</h2><table id="growth"><tr><th class="l"></th><th>baseline</th>'
                 '<th>now</th><th>growth</th><th>%</th></tr>')

        def grow_row(lab, d):
            cls = "grow" if d["growth"] > 0 else ("shrink" if d["growth"] < 0 else "")
            pct = f"{d['percent']:+.2f}%" if d["percent"] is not None else "-"
            return (f"<tr><td class=l>{lab}</td><td>{d['old']:,}</td><td>{d['new']:,}</td>"
                    f'<td class="{cls}">{d["growth"]:+,}</td><td>{pct}</td></tr>')
        h.append(grow_row("<b>flash</b>", g["flash"]) + grow_row("<b>RAM</b>", g["ram"]))
        for name, d in g["sections"].items():
            if d["growth"] or d["old"]:
                h.append(grow_row(f"<code>{e(name)}</code>", d))
        for L in g["layers"]:
            if L["changed"]:
                who = f"<code>{e(L['model'])}</code> " if multi and L.get("model") else ""
                h.append(grow_row(f"{who}layer {L['index']} {e(L['op'])}", L["flash_bytes"]))
        if multi:
            for name, d in (g.get("models") or {}).items():
                h.append(grow_row(f"<code>{e(name)}</code> flash", d["flash"])
                         + grow_row(f"<code>{e(name)}</code> RAM", d["ram"]))
        h.append("</table>")

    h.append('<h2>Sections</h2><table id="sections"><tr><th class="l">section</th><th>address</th><th>size</th>'
             '<th>flash</th><th>RAM</th><th>unattributed</th></tr>')
    for s in rep["sections"]:
        h.append(f"<tr><td class=l><code>{e(s['name'])}</code></td><td>0x{s['addr']:08x}</td><td>{s['size']:,}</td>"
                 f"<td>{s['flash']:,}</td><td>{s['ram']:,}</td><td>{s['unattributed']:,}</td></tr>")
    bk = rep["berkeley"]
    h.append(f"</table><p class=note>text {bk['text']:,} · data {bk['data']:,} · bss {bk['bss']:,} "
             "(the columns of binutils size). Flash = text + data; RAM = data + bss.</p>")
    h.append(f'<details><summary>Largest symbols (top {symbols} of {len(rep["symbols"])})</summary>'
             '<table id="symbols"><tr><th class="l">symbol</th><th>bytes</th><th class="l">section</th>'
             '<th class="l">kind</th><th class="l">owner</th></tr>')
    for s in rep["symbols"][:symbols]:
        owner = _owner(rep, s)
        h.append(f"<tr><td class=l><code>{e(s['name'])}</code></td><td>{s['bytes']:,}</td>"
                 f"<td class=l>{e(s['section'])}</td><td class=l>{e(s['kind'])}</td><td class=l>{e(owner)}</td></tr>")
    h.append("</table></details>")
    h.append('<p class="note">Generated by <code>edgec size</code> from the ELF\'s sections and symbols '
             '(pyelftools). Schema: edgec-size/1.</p></main></body></html>')
    return "\n".join(h) + "\n"
