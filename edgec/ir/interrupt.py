"""SIGINT, SIGTERM and SIGHUP end edgec within a second, wherever it is, leaving
nothing half-written.

Python runs signal handlers only between bytecodes, in the main thread: a build
inside a long C call that holds the GIL (onnx's function inliner, protobuf, TVM)
ran on for minutes after SIGTERM, and no Python thread can step in, since it needs
the GIL too.  So the command line (:func:`install`, called by ``edgec.cli`` before
anything else) runs as two processes:

* the **supervisor**, the process the caller started: its pid and exit status are
  what the caller sees.  It forks when little more than click is loaded, and then
  only waits, for the worker to end, for the temporary paths the worker registers
  (:func:`track`, through a pipe) and for signals;
* the **worker** (the fork) does the work.  Its first SIGINT raises
  KeyboardInterrupt, its first SIGTERM or SIGHUP ``SystemExit(128 + signum)``:
  where Python code runs, the usual unwinding removes temporary files and kills
  child processes (``subprocess.run`` does), and the worker exits 130, 143 or 129.
  Its TMPDIR is a private directory of the supervisor's, so the temporary files of
  edgec, its libraries and its compilers all live there.

On the first signal, sent to the supervisor (which forwards it) or to the worker
(whose C-level handler reports it through ``signal.set_wakeup_fd``, which needs no
GIL), the supervisor gives the worker :data:`GRACE` seconds.  If it is still alive
then, it is stuck in C: the supervisor stops and kills it together with all its
descendants (compilers, QEMU, forked reference interpreters), removes the
registered paths and the private TMPDIR, and exits 128 + signum itself.  When the
worker ends on its own, the supervisor exits with its status.

A signal the caller ignored stays ignored: SIGINT in a background job of a
non-interactive shell (``make test &``: Ctrl-C at the terminal is meant for the
foreground job, and such jobs share its process group) or SIGHUP under nohup.
Python itself leaves an ignored SIGINT alone for the same reason.

Without ``os.fork`` (Windows), or with ``EDGEC_SUPERVISOR=0`` (debuggers: the
supervisor would kill a worker paused at a breakpoint after Ctrl-C), the handlers
run in-process and a watchdog thread does the supervisor's work, which it can
only do while the C code releases the GIL.  Library use (``edgec.build``) installs
nothing: signals are the embedding program's business, and ``Bundle.write``
cleans up when an exception unwinds through it.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import tempfile
import threading
import time

# seconds a signalled worker has to unwind before it is killed
GRACE = 0.5

_NAMES = ("SIGINT", "SIGTERM", "SIGHUP")


class _State:
    installed = False
    supervised = False
    handled: tuple = ()
    first = None            # the first signal received (worker / in-process)
    pipe: int | None = None  # worker -> supervisor: registrations
    paths: set = set()
    lock = threading.Lock()


_st = _State()


# ---------------------------------------------------------------- the registry

def track(path) -> str:
    """Remove ``path`` (a file or a directory tree) if a signal ends edgec before
    :func:`untrack`.  For temporary paths outside TMPDIR, e.g. the hidden sibling a
    bundle is written into; returns the absolute path."""
    p = os.path.abspath(os.fspath(path))
    with _st.lock:
        _st.paths.add(p)
        _send(b"+", p)
    return p


def untrack(path) -> None:
    p = os.path.abspath(os.fspath(path))
    with _st.lock:
        _st.paths.discard(p)
        _send(b"-", p)


def _send(op: bytes, p: str) -> None:
    if _st.pipe is None:
        return
    msg = op + os.fsencode(p) + b"\0"  # one write below PIPE_BUF: atomic
    try:
        while msg:
            msg = msg[os.write(_st.pipe, msg):]
    except OSError:  # the supervisor is gone (then so are we, soon)
        _st.pipe = None


def _remove(paths) -> None:
    for p in sorted(paths, reverse=True):
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        except OSError:
            pass


# ---------------------------------------------------------------- installing

def install() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP as the module docstring says.  Call it once,
    first thing, from the program's main thread; a no-op elsewhere and when called
    again."""
    if _st.installed or threading.current_thread() is not threading.main_thread():
        return
    _st.installed = True
    handled = []
    for n in _NAMES:
        s = getattr(signal, n, None)
        if s is not None and signal.getsignal(s) is not signal.SIG_IGN:
            handled.append(s)
    _st.handled = tuple(handled)
    if not handled:
        return
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, handled) if hasattr(signal, "pthread_sigmask") \
        else None
    try:
        if hasattr(os, "fork") and os.environ.get("EDGEC_SUPERVISOR", "1") != "0":
            _split(old_mask)  # returns in the worker only
        for s in handled:
            signal.signal(s, _on_signal)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork)
    finally:
        if old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _on_signal(signum, frame) -> None:
    if _st.first is not None:  # unwinding already: a repeat (or the group's copy) changes nothing
        return
    _st.first = signum
    if not _st.supervised:
        threading.Thread(target=_watchdog, args=(signum,), daemon=True, name="edgec-watchdog").start()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _after_fork() -> None:
    """Forked helpers (reference interpreters in a child, process pools) end at once on
    a signal: the parent's unwinding, or the supervisor, cleans up after them."""
    _st.first = None
    for s in _st.handled:
        try:
            signal.signal(s, signal.SIG_DFL)
        except (ValueError, OSError):
            pass
    try:
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        pass


def _watchdog(signum: int) -> None:
    """In-process fallback: GRACE seconds after the first signal, whatever still runs
    is stuck; kill the children, remove the registered paths, exit."""
    time.sleep(GRACE)
    with _st.lock:
        paths = set(_st.paths)
    _kill_tree(os.getpid(), include_root=False)
    _remove(paths)
    if signum == signal.SIGINT:
        _say("edgec: interrupted\n")
    os._exit(128 + signum)


def _say(text: str) -> None:
    try:
        os.write(2, text.encode())
    except OSError:
        pass


# ---------------------------------------------------------------- supervisor

def _split(old_mask) -> None:
    try:
        root = tempfile.mkdtemp(prefix="edgec-")
    except OSError:
        root = None
    reg_r, reg_w = os.pipe()
    wake_r, wake_w = os.pipe()
    for fd in (reg_r, wake_r, wake_w):
        os.set_blocking(fd, False)
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError, AttributeError):
            pass
    parent = os.getpid()
    pid = os.fork()
    if pid:
        os.close(reg_w)
        _supervise(pid, root, reg_r, wake_r, wake_w, old_mask)  # does not return
    os.close(reg_r)
    os.close(wake_r)
    _die_with_parent(parent)
    _st.supervised = True
    _st.pipe = reg_w
    if root is not None:
        os.environ["TMPDIR"] = root
        tempfile.tempdir = root
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)


def _die_with_parent(parent: int) -> None:
    """A SIGKILLed supervisor takes the worker with it (Linux: PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before that
        os._exit(128 + int(signal.SIGKILL))


def _supervise(pid: int, root, reg_r: int, wake_r: int, wake_w: int, old_mask) -> None:
    handled = _st.handled
    state = {"sig": None, "deadline": None}

    def start(signum):
        if state["sig"] is None:
            state["sig"] = int(signum)
            state["deadline"] = time.monotonic() + GRACE

    def on_signal(signum, frame):
        start(signum)
        try:
            os.kill(pid, signum)
        except OSError:
            pass
    for s in handled:
        signal.signal(s, on_signal)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)  # wakes the select below
    if old_mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None  # poll instead
    paths: set[str] = set()
    pending = [b""]

    def read_registrations():
        while True:
            try:
                data = os.read(reg_r, 1 << 16)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            if not data:
                return False
            *msgs, pending[0] = (pending[0] + data).split(b"\0")
            for m in msgs:
                p = os.fsdecode(m[1:])
                if m[:1] == b"+":
                    paths.add(p)
                else:
                    paths.discard(p)

    fds = [reg_r, wake_r] + ([pidfd] if pidfd is not None else [])
    status, forced = None, False
    while True:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
        now = time.monotonic()
        dl = state["deadline"]
        if dl is not None and now >= dl:
            read_registrations()
            _kill_tree(pid)
            forced = True
            break
        timeout = None if pidfd is not None else 0.05
        if dl is not None:
            timeout = dl - now if timeout is None else min(timeout, dl - now)
        try:
            ready = select.select(fds, [], [], timeout)[0]
        except OSError:
            ready = []
        if reg_r in ready and not read_registrations():
            fds.remove(reg_r)
        if wake_r in ready:
            try:
                data = os.read(wake_r, 512)
            except OSError:
                data = b""
            for b in data:
                if b in handled:
                    start(b)
    read_registrations()
    _remove(paths)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)
    sig = state["sig"]
    if forced:
        if sig == signal.SIGINT:
            _say("edgec: interrupted\n")
        os._exit(128 + sig)
    if os.WIFEXITED(status):
        os._exit(os.WEXITSTATUS(status))
    died = os.WTERMSIG(status)
    if sig is not None:
        os._exit(128 + sig)
    # the worker died of a signal of its own (a crash, the OOM killer): so do we
    try:
        signal.signal(died, signal.SIG_DFL)
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [died])
        os.kill(os.getpid(), died)
    except (OSError, ValueError):
        pass
    os._exit(128 + died)


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc (Linux); {} elsewhere."""
    kids: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return kids
    for n in names:
        if not n.isdigit():
            continue
        try:
            with open(f"/proc/{n}/stat", "rb") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(n))
    return kids


def _kill_tree(pid: int, include_root: bool = True) -> None:
    """SIGKILL ``pid`` and its descendants: stopped first, top down, so none forks
    or is reparented (out of reach) while the tree is collected."""
    seen = {pid}
    if include_root:
        try:
            os.kill(pid, signal.SIGSTOP)
        except OSError:
            return
    for _ in range(8):
        kids = _children()
        new, todo = [], [pid]
        while todo:
            for c in kids.get(todo.pop(), ()):
                if c not in seen:
                    seen.add(c)
                    new.append(c)
                todo.append(c)
        if not new:
            break
        for c in new:
            try:
                os.kill(c, signal.SIGSTOP)
            except OSError:
                pass
    for p in seen:
        if p != pid or include_root:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
    if include_root:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    # SIGKILL takes effect asynchronously: wait (briefly) until the others are gone too
    others = seen - {pid}
    t_end = time.monotonic() + 0.2
    while others and time.monotonic() < t_end:
        others = {p for p in others if _alive(p)}
        if others:
            time.sleep(0.005)


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:][:1] not in (b"Z", b"X")
    except (OSError, ValueError):
        if os.path.isdir("/proc/self"):
            return False
    try:  # no /proc: ask the kernel (a zombie counts as alive here)
        os.kill(pid, 0)
    except OSError:
        return False
    return True
