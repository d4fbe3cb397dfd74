"""Run a command and measure its own CPU time and peak RSS.

Linux carries a process's peak RSS over fork and exec, so a command started straight from
a pytest worker that has imported TensorFlow reports the worker's gigabyte as its own
peak.  The command is therefore started by a small launcher process: a child of the fresh
launcher starts from the launcher's few megabytes, and ``wait4`` gives the command's own
usage (with its reaped children's)."""
import json
import subprocess
import sys
import time

_LAUNCHER = r"""
import json, os, resource, subprocess, sys, threading
cmd, cwd, limit, space = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])

def cap():
    if space:
        resource.setrlimit(resource.RLIMIT_AS, (space, space))

p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=cap)
out = {}
readers = [threading.Thread(target=lambda k=k, f=f: out.__setitem__(k, f.read()))
           for k, f in (("out", p.stdout), ("err", p.stderr))]
for t in readers:
    t.start()
killer = threading.Timer(limit, p.kill)
killer.start()
_, status, ru = os.wait4(p.pid, 0)
killer.cancel()
for t in readers:
    t.join()
json.dump([os.waitstatus_to_exitcode(status), out["out"].decode("utf-8", "replace"),
           out["err"].decode("utf-8", "replace"), ru.ru_utime + ru.ru_stime, ru.ru_maxrss * 1024],
          sys.stdout)
"""


def run_measured(cmd, cwd, env, timeout: float, address_space: int = 0):
    """(returncode, stdout, stderr, CPU seconds, wall seconds, peak RSS bytes) of ``cmd``;
    killed after ``timeout`` seconds; ``address_space`` caps its RLIMIT_AS when set."""
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", _LAUNCHER, json.dumps([str(c) for c in cmd]), str(cwd),
                        str(timeout), str(address_space)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rc, so, se, cpu, rss = json.loads(r.stdout)
    return rc, so, se, cpu, time.monotonic() - t0, rss
