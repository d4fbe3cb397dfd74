"""What ``edgec size`` and ``edgec check`` do: find the firmware ELF and its bundles from
the command line and the project file (edgec.toml, :mod:`edgec.commands.config`),
measure it (:mod:`edgec.report.size`) and hold it against its budgets and a baseline."""
from __future__ import annotations

from ..ir.errors import EdgecError
from . import size as rp
from ..target.targets import parse_size


def measure(elf_or_bundle, bundles=(), report_path=None, names=(), cfg=None) -> tuple[rp.Located, dict]:
    """Where the firmware and its build reports are, and its size report.

    ``elf_or_bundle``: a firmware ELF or a bundle directory, else the project file's
    ``elf`` (with its ``output`` as the bundle) or ``output``.  Several ``bundles`` or
    ``names``: one firmware linking several models, each attributed separately."""
    bundles, names = list(bundles), list(names)
    if len(bundles) > 1 or len(names) > 1:
        # several models in one firmware (one --bundle with one --name: the name is the bundle's)
        if elf_or_bundle is None and cfg is not None and cfg.elf is not None:
            elf_or_bundle = cfg.elf
        if elf_or_bundle is None:
            raise EdgecError("give the firmware ELF that links the bundles")
        if report_path is not None:
            raise EdgecError("--report goes with one bundle: with several, each --bundle's "
                             "report.json is read")
        loc, models = rp.locate_models(elf_or_bundle, bundles, names)
        return loc, rp.size_report(loc.elf, note=loc.note, models=models)
    bundle = bundles[0] if bundles else None
    name = names[0] if names else None
    if elf_or_bundle is None:
        if cfg is not None and cfg.elf is not None:
            elf_or_bundle = cfg.elf
            if bundle is None and report_path is None and cfg.output is not None:
                bundle = cfg.output
        elif cfg is not None and cfg.output is not None:
            elf_or_bundle = cfg.output
        else:
            raise EdgecError("give a firmware ELF or a bundle directory, or name them in "
                             "edgec.toml (elf = \"...\", output = \"...\")")
    loc = rp.locate(elf_or_bundle, bundle=bundle, report=report_path)
    rep = rp.size_report(loc.elf, loc.build_report, name=name, note=loc.note)
    return loc, rep


def size(elf_or_bundle, bundles=(), report_path=None, names=(), cfg=None,
         baseline=None) -> tuple[dict, rp.CheckResult | None]:
    """The size report, and with a ``baseline`` (a previous size report's path) its
    growth since (no budgets)."""
    _, rep = measure(elf_or_bundle, bundles, report_path, names, cfg)
    chk = None
    if baseline is not None:
        chk = rp.check(rep, rp.Budgets(), rp.load_size_report(baseline))
    return rep, chk


def check(elf_or_bundle, bundles=(), report_path=None, names=(), cfg=None, baseline=None,
          flash_budget=None, ram_budget=None, max_growth=None, target=None) -> tuple[dict, rp.CheckResult]:
    """The size report held against its budgets: --flash / --ram, else the project
    file's [budget], else the target's typical memory (``target``, the project's, the
    build report's); and against a baseline (its growth within ``max_growth``)."""
    b = rp.Budgets()
    src = []
    if flash_budget is not None:
        b.flash = parse_size(flash_budget, "--flash budget")
    if ram_budget is not None:
        b.ram = parse_size(ram_budget, "--ram budget")
    if b.flash is not None or b.ram is not None:
        src.append("command line")
    if cfg is not None:
        used = False
        if b.flash is None and cfg.flash is not None:
            b.flash, used = cfg.flash, True
        if b.ram is None and cfg.ram is not None:
            b.ram, used = cfg.ram, True
        if used:
            src.append(cfg.label)
    mg = max_growth if max_growth is not None else (cfg.max_growth if cfg else None)
    if mg is not None:
        b.max_growth = rp.parse_growth(mg)
        b.max_growth_text = str(mg)
    base_path = baseline or (cfg.baseline if cfg is not None else None)
    if b.max_growth is not None and base_path is None:
        raise EdgecError("--max-growth needs --baseline (a previous size report)")
    base = rp.load_size_report(base_path) if base_path is not None else None
    _, rep = measure(elf_or_bundle, bundles, report_path, names, cfg)
    if b.flash is None and b.ram is None and base is None:
        tb = rp.budgets_from_target(target or (cfg.target if cfg else None) or rep.get("target"))
        if tb is None:
            raise EdgecError("no budget: give --flash / --ram, a [budget] in edgec.toml, "
                             "or --target")
        b.flash, b.ram, src = tb.flash, tb.ram, [tb.source]
    b.source = " + ".join(src)
    return rep, rp.check(rep, b, base)
