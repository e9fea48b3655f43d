"""Runs a process and measures it from /proc: wall time, CPU (with reaped children), and the peak
of the process tree's own anonymous memory (RssAnon) and resident memory incl. mapped files
(VmRSS), sampled every 50 ms and attributed to the phase the caller names (set from its log)."""
import os
import subprocess
import threading
import time


def _status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    return out


def _tree(pid):
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


def cpu_seconds(pid):
    """utime+stime of the process and its reaped children, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


class Sampler:
    """Peaks per phase of a process tree: own anonymous memory and resident incl. mapped files."""

    def __init__(self, pid):
        self.pid, self.phase, self.peaks, self._stop = pid, "startup", {}, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            anon = rss = 0
            for p in _tree(self.pid):
                s = _status(p)
                anon += s.get("RssAnon", 0)
                rss += s.get("VmRSS", 0)
            a, r = self.peaks.get(self.phase, (0, 0))
            self.peaks[self.phase] = (max(a, anon), max(r, rss))
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._thread.join()

    def peak(self):
        return (max((a for a, _ in self.peaks.values()), default=0), max((r for _, r in self.peaks.values()), default=0))


def run_measured(cmd, env=None, cwd=None):
    """Runs a shell command under GNU time; returns (seconds, cpu seconds, max RSS of the largest process
    in bytes, rc, output). GNU time, not this interpreter, forks the command: a child forked from
    Python would carry Python's resident size into its own high-water mark."""
    import tempfile
    with tempfile.NamedTemporaryFile("r") as tf:
        t0 = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%U %S %M", "/bin/bash", "-c", cmd], env=env, cwd=cwd,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        secs = time.monotonic() - t0
        fields = tf.read().split()[-3:]
    user, sys_, maxrss = float(fields[0]), float(fields[1]), int(fields[2]) * 1024
    return secs, user + sys_, maxrss, p.returncode, p.stdout.decode(errors="replace")


def machine_busy_seconds():
    """CPU time the whole machine spent busy since boot (all cores, every process: /proc/stat without idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
