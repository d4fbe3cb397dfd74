"""A bundle: the directory `edgec build` writes (C sources, build files, report).

Written atomically: everything goes to a temporary sibling directory which
replaces the output directory in one step at the end (an atomic exchange on
Linux, a rename otherwise), so an interrupted or failed build never leaves a
half-written bundle and a previous bundle at that path survives a failed build.
(A SIGKILL can leave the hidden temporary ``.NAME.tmp-*`` sibling behind; never a
partial ``NAME``.)  Contents are deterministic (sorted keys, no timestamps, no
absolute paths).

Every bundle carries ``.edgec-manifest.json``: the sha256 of each file edgec
wrote, and the files its own Makefile builds there (``make clean``'s list).  A
rebuild replaces an existing directory only when it is empty or holds nothing
but those: a file edgec did not write, a file changed since, or a directory
without a manifest (another directory, or a bundle of an older edgec) is refused,
naming them.  ``force=True`` writes the bundle anyway, keeping everything that is
not edgec's: the new directory gets hard links to the user's files (same inodes,
untouched), so the replacement stays one atomic exchange.

:func:`write_file` writes any other output file the same way (temporary sibling,
then rename).
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import interrupt
from .errors import EdgecError

MANIFEST = ".edgec-manifest.json"
MANIFEST_SCHEMA = "edgec-manifest/1"
# file systems that are the kernel's interface, not storage: never written to
PSEUDO_FS = frozenset({"proc", "sysfs", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs",
                       "configfs", "pstore", "efivarfs", "bpf", "fusectl", "devpts", "devtmpfs",
                       "mqueue", "binfmt_misc", "autofs", "rpc_pipefs", "nsfs", "hugetlbfs"})
# files named in one-line messages before "and N more"
SHOW = 4


def dumps_json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


@dataclass
class Bundle:
    name: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    # what the bundle's own Makefile writes into it (its `make clean` list; globs)
    products: tuple[str, ...] = ()

    def add(self, path: str, content: str | bytes) -> None:
        if path.startswith("/") or ".." in Path(path).parts or path == MANIFEST:
            raise ValueError(path)
        self.files[path] = content

    def write(self, out_dir, force: bool = False) -> Path:
        """Write the bundle to ``out_dir`` (see the module docstring); ``force`` keeps
        files edgec did not write instead of refusing them."""
        files = dict(self.files)
        files["report.json"] = dumps_json(self.report)
        return write_tree(Path(out_dir), files, products=self.products, force=force)


def _bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def manifest(files: dict[str, str | bytes], products=()) -> str:
    """The manifest of a bundle's ``files`` (every file but the manifest itself)."""
    return dumps_json({"schema": MANIFEST_SCHEMA,
                       "files": {rel: hashlib.sha256(_bytes(files[rel])).hexdigest() for rel in sorted(files)},
                       "build_products": sorted(products)})


# ---------------------------------------------------------------- output paths

def _show(rel: str) -> str:
    """A file name as it goes into a one-line message."""
    return rel if rel.isprintable() else rel.encode("unicode_escape").decode("ascii")


def _names(rels: list[str]) -> str:
    more = f" and {len(rels) - SHOW} more" if len(rels) > SHOW else ""
    return ", ".join(_show(r) for r in rels[:SHOW]) + more


def _mount_of(path: str) -> tuple[str, str] | None:
    """(mount point, file system type) holding ``path``, from /proc/self/mounts."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    best = None
    for ln in lines:
        parts = ln.split(" ")
        if len(parts) < 3:
            continue
        mnt = parts[1].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
            .replace("\\134", "\\")
        inside = path == mnt or path.startswith(mnt.rstrip("/") + "/")
        if inside and (best is None or len(mnt) >= len(best[0])):
            best = (mnt, parts[2])
    return best


def output_path(given) -> Path:
    """The absolute path an output named ``given`` is written at (through symlinks to
    existing paths); a one-line EdgecError for a dangling symlink on the way or a
    kernel file system (/proc, /sys, ...)."""
    p = Path(os.path.abspath(given))
    for q in (p, *p.parents):
        if q.is_symlink() and not q.exists():
            raise EdgecError(f"{_show(str(given))}: {_show(str(q))} is a symbolic link to "
                             f"{_show(os.readlink(q))}, which does not exist: not writing through it")
    real = os.path.realpath(p)
    for top in ("/proc", "/sys"):  # whatever is mounted there, and whatever /proc/self/... leads to
        if any(x == top or x.startswith(top + "/") for x in (str(p), real)):
            raise EdgecError(f"{_show(str(given))} is under {top}, the kernel's interface: not writing there")
    m = _mount_of(real)
    if m is not None and m[1] in PSEUDO_FS:
        raise EdgecError(f"{_show(str(given))} is on {_show(m[0])} ({m[1]}), a kernel file system: "
                         "not writing there")
    return Path(real)


def _make_parents(d: Path) -> list[Path]:
    """Create ``d`` and missing parents; returns those created (to remove on failure)."""
    missing = []
    q = d
    while not q.exists():
        missing.append(q)
        q = q.parent
    if not q.is_dir():
        raise EdgecError(f"cannot create {_show(str(d))}: {_show(str(q))} is not a directory")
    if not os.access(q, os.W_OK | os.X_OK):
        raise EdgecError(f"cannot write in {_show(str(q))}: permission denied")
    made = []
    try:
        for m in reversed(missing):
            m.mkdir()
            made.append(m)
    except OSError as e:
        _unmake(made)
        raise EdgecError(f"cannot create {_show(str(m))}: {e.strerror}") from None
    return made


def _unmake(made: list[Path]) -> None:
    for m in reversed(made):
        try:
            m.rmdir()
        except OSError:
            pass


def write_file(path, data: str | bytes) -> Path:
    """Write one output file atomically (a hidden temporary sibling, then a rename):
    a failure or a signal leaves the previous file, never a partial one."""
    out = output_path(path)
    if out.is_dir():
        raise EdgecError(f"{_show(str(path))} is a directory")
    made = _make_parents(out.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent)
        with os.fdopen(fd, "wb") as f:
            interrupt.track(tmp)
            f.write(_bytes(data))
        try:
            mode = stat.S_IMODE(out.stat().st_mode)
        except OSError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, out)
    except BaseException as e:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
        _unmake(made)
        if isinstance(e, OSError):
            raise EdgecError(f"cannot write {_show(str(path))}: {e.strerror or e}") from None
        raise
    finally:
        if tmp is not None:
            interrupt.untrack(tmp)
    return out


def _umask() -> int:
    m = os.umask(0o22)
    os.umask(m)
    return m


# ---------------------------------------------------------------- what is in an output directory

@dataclass
class _Survey:
    manifest: dict | None
    foreign: list[str]   # not edgec's (directories as "name/")
    changed: list[str]   # edgec's, changed since
    older_bundle: bool   # no manifest, but an edgec report.json


def _read_manifest(out: Path) -> dict | None:
    try:
        m = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(m, dict) and m.get("schema") == MANIFEST_SCHEMA and isinstance(m.get("files"), dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in m["files"].items())
            and isinstance(m.get("build_products", []), list)):
        return None
    return m


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _survey(out: Path) -> _Survey:
    man = _read_manifest(out)
    known = man["files"] if man else {}
    products = [p for p in (man or {}).get("build_products", []) if isinstance(p, str)]
    dirs = {str(Path(k).parent) + "/" for k in known if "/" in k}
    dirs |= {d[:i + 1] for d in list(dirs) for i in range(len(d)) if d[i] == "/"}
    foreign, changed = [], []

    def walk(d: str, rel: str) -> None:
        for e in sorted(os.scandir(d), key=lambda e: e.name):
            r = rel + e.name
            if e.is_dir(follow_symlinks=False):
                if r + "/" in dirs:
                    walk(e.path, r + "/")
                else:
                    foreign.append(r + "/")
            elif r == MANIFEST and man is not None:
                continue
            elif r in known:
                if not e.is_file(follow_symlinks=False) or _sha256(e.path) != known[r]:
                    changed.append(r)
            elif not rel and e.is_file(follow_symlinks=False) and \
                    any(fnmatch.fnmatchcase(r, pat) for pat in products):
                continue  # built here by the bundle's Makefile
            else:
                foreign.append(r)
    walk(str(out), "")
    older = False
    if man is None and (foreign or changed):
        try:
            schema = json.loads((out / "report.json").read_text(encoding="utf-8")).get("schema", "")
            older = isinstance(schema, str) and schema.startswith("edgec-")
        except (OSError, ValueError, AttributeError):
            pass
    return _Survey(man, foreign, changed, older)


def _refusal(out, s: _Survey) -> str | None:
    """Why ``out`` may not be replaced without --force (None: it may)."""
    where = _show(str(out))
    if s.manifest is None and s.older_bundle:
        return (f"{where} is a bundle of an older edgec, without {MANIFEST}: edgec cannot tell its "
                "files from yours; remove it, or use --force (replaces the files the new bundle "
                "writes, keeps the others)")
    parts = []
    if s.foreign:
        parts.append(f"files edgec did not write ({_names(s.foreign)})")
    if s.changed:
        parts.append(f"files changed since edgec wrote them ({_names(s.changed)})")
    if not parts:
        return None
    return (f"{where} holds " + " and ".join(parts) + ": not replacing it; move them away, or use "
            "--force (replaces edgec's files, keeps the others)")


# ---------------------------------------------------------------- writing a bundle

def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one atomic step (Linux renameat2 RENAME_EXCHANGE).
    False where the system cannot (other OSes, old kernels, some file systems)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _keep(src: Path, dst: Path, rels: list[str], ours: set[str], where: str, strict: bool = True) -> bool:
    """Hard links in ``dst`` to the entries ``rels`` of ``src`` (the user's files: same
    inodes, untouched; directories recreated, symbolic links copied).  Where the new
    bundle writes a file (``ours``), the new bundle's file wins; a directory in its way
    is an EdgecError (``strict``) or leaves False (the caller keeps ``src``)."""
    placed = [True]

    def conflict(rel, why):
        if strict:
            raise EdgecError(f"{where}: cannot keep {_show(rel)} ({why}); move it away")
        placed[0] = False

    def put(s: Path, d: Path, st) -> None:
        """``d`` becomes a link to ``s`` (replacing an older link of the user's)."""
        if os.path.lexists(d):
            if stat.S_ISLNK(st.st_mode) and d.is_symlink() and os.readlink(d) == os.readlink(s):
                return
            if os.path.samestat(st, d.lstat()):
                return
        t = d.parent / f".{d.name}.edgec-{os.getpid()}"
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), t)
        else:
            os.link(s, t, follow_symlinks=False)
        os.replace(t, d)

    def one(s: Path, d: Path, rel: str) -> None:
        try:
            st = s.lstat()
        except FileNotFoundError:  # gone meanwhile
            return
        if stat.S_ISDIR(st.st_mode):
            if d.is_symlink() or (d.exists() and not d.is_dir()):
                return conflict(rel + "/", "the new bundle writes a file there")
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError:
                return conflict(rel + "/", "the new bundle writes a file where it goes")
            for e in sorted(os.scandir(s), key=lambda e: e.name):
                one(Path(e.path), d / e.name, f"{rel}/{e.name}")
            os.chmod(d, stat.S_IMODE(st.st_mode))
            return
        if rel in ours:
            return  # the new bundle's file replaces it
        if d.is_dir() and not d.is_symlink():
            return conflict(rel, "the new bundle has a directory there")
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            return conflict(rel, "not a regular file, directory or symbolic link")
        try:
            d.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return conflict(rel, "the new bundle writes a file where its directory goes")
        try:
            put(s, d, st)
        except OSError as e:
            conflict(rel, f"cannot link it into the new bundle: {e.strerror}")
    for rel in rels:
        r = rel.rstrip("/")
        one(src / r, dst / r, r)
    return placed[0]


def _retire(prev: Path, out: Path, ours: set[str], where: str) -> None:
    """Remove the previous directory after the swap, but first link into the new one
    what the user added to it while the bundle was being written (nothing is lost:
    what cannot be placed stays in a hidden ``.NAME.kept-*`` sibling)."""
    try:
        late = _survey(prev).foreign
        placed = not late or _keep(prev, out, late, ours, where, strict=False)
    except OSError:
        placed = False
    if not placed:
        os.rename(prev, tempfile.mkdtemp(prefix=f".{out.name}.kept-", dir=out.parent))
        return
    shutil.rmtree(prev, ignore_errors=True)


def write_tree(out: Path, files: dict[str, str | bytes], products=(), force: bool = False) -> Path:
    """Write ``files`` (plus their manifest) as the directory ``out``, atomically; an
    existing ``out`` is replaced only as the module docstring says."""
    given = out
    where = _show(str(given))
    out = output_path(out)
    if out.exists() and not out.is_dir():
        raise EdgecError(f"{where} exists and is not a directory")
    if out.exists() and not force:  # fail before any work
        try:
            why = _refusal(given, _survey(out))
        except OSError as e:
            raise EdgecError(f"cannot read {where}: {e.strerror or e}") from None
        if why:
            raise EdgecError(why)
    parent = out.parent
    made = _make_parents(parent)
    ours = set(files) | {MANIFEST}
    files = dict(files)
    files[MANIFEST] = manifest(files, products)
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
        interrupt.track(tmp)
        for rel in sorted(files):
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(_bytes(files[rel]))
        mode = 0o755
        if out.exists():
            # again, as late as possible: the directory may have changed meanwhile
            s = _survey(out)
            why = _refusal(given, s)
            if why and not force:
                raise EdgecError(why)
            if force:
                _keep(out, tmp, s.foreign, ours, where)
            mode = stat.S_IMODE(out.stat().st_mode)
        os.chmod(tmp, mode)
        if out.exists() and _exchange(tmp, out):
            # one atomic step: ``out`` is the new bundle, ``tmp`` now holds the old one
            _retire(tmp, out, ours, where)
            return out
        old = None
        if out.exists():
            # fallback: two renames (a crash between them leaves the previous bundle in
            # .NAME.old-PID next to ``out``)
            old = parent / f".{out.name}.old-{os.getpid()}"
            if old.exists():
                shutil.rmtree(old)
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            _retire(old, out, ours, where)
    except BaseException as e:
        if tmp is not None:  # the new bundle, or (after the swap) the previous directory
            shutil.rmtree(tmp, ignore_errors=True)
        if not out.exists():
            _unmake(made)
        if isinstance(e, OSError):
            raise EdgecError(f"cannot write the bundle {where}: {e.strerror or e}") from None
        raise
    finally:
        if tmp is not None:
            interrupt.untrack(tmp)
    return out
