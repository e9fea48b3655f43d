"""End-to-end benchmark (issue 12): one signed delivery from VCS A to a pushed image, the engine
(`pipeline run`) against a shell pipeline of standard tools doing the same work, alternating
rounds after a warm-up pair, each round with a freshly restarted clamd of our own. Started by
bench/e2e/run.sh, which builds the engine and exports the shared services' settings."""
import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import gen  # noqa: E402
import measure  # noqa: E402

MB = 1 << 20
ENGINE_STAGES = ["fetch", "verify", "scan", "publish", "build", "push"]
# Rows of the comparison: (row, engine phases, shell step)
ROWS = [("fetch (git)", ["git-fetch"], "fetch"), ("export tree", ["fetch"], "export"), ("verify", ["verify"], "verify"),
        ("scan", ["scan"], "scan"), ("publish to VCS B", ["publish"], "publish"), ("build + push", ["build", "push"], "build+push")]
SHELL_STEPS = ["fetch", "export", "verify", "scan", "publish", "build+push"]


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, executable="/bin/bash", check=True, **kw)


class Bench:
    def __init__(self, a):
        self.a = a
        self.env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
        self.run_id = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        self.work = a.work
        self.git_http = os.environ["PIPELINE_GIT_HTTP"]
        self.git_root = os.environ["PIPELINE_GIT_ROOT"]
        self.registry = os.environ["PIPELINE_REGISTRY"]
        self.user = os.environ["PIPELINE_GIT_USER"]
        self.password = open(os.environ["PIPELINE_GIT_PASSWORD_FILE"]).read().strip()
        self.db = f"bench_e2e_{self.run_id}"
        self.clamd = None
        self.state = a.state

    # ---- own clamd, restarted before every round (clamd caches clean files by digest)
    def restart_clamd(self):
        self.stop_clamd()
        os.makedirs(os.path.join(self.state, "tmp"), exist_ok=True)
        sock, conf = os.path.join(self.state, "clamd.sock"), os.path.join(self.state, "clamd.conf")
        if os.path.exists(sock):
            os.unlink(sock)
        with open(os.environ["PIPELINE_CLAMD_CONFIG"]) as f, open(conf, "w") as o:
            for line in f:
                k = line.split(" ", 1)[0]
                if k in ("TCPSocket", "TCPAddr"):
                    continue  # unix socket only: no port to collide with other benchmarks
                line = {"LocalSocket": f"LocalSocket {sock}\n", "LogFile": f"LogFile {self.state}/clamd.log\n",
                        "TemporaryDirectory": f"TemporaryDirectory {self.state}/tmp\n"}.get(k, line)
                o.write(line)
        self.clamd = subprocess.Popen(["clamd", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = subprocess.run(f"printf 'zPING\\0' | nc -U -w 3 {sock} 2>/dev/null | tr -d '\\0'", shell=True, capture_output=True, text=True)
            if r.stdout.strip() == "PONG":
                self.sock, self.conf = sock, conf
                return
            if self.clamd.poll() is not None:
                sys.exit(f"bench: own clamd died; see {self.state}/clamd.log")
            time.sleep(0.2)
        sys.exit("bench: own clamd did not answer PING")

    def clamd_cpu(self):
        """CPU seconds of our own clamd so far (its signature load before the round is taken off by the caller)."""
        return measure.cpu_seconds(self.clamd.pid) if self.clamd is not None else 0.0

    def stop_clamd(self):
        if self.clamd is not None:
            self.clamd.terminate()
            self.clamd.wait()
            self.clamd = None

    # ---- setup: database, keys, base image, the signed delivery in VCS A
    def setup(self):
        a = self.a
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        cred = os.path.join(self.work, "git.cred")
        with open(os.open(cred, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(f"{self.user}:{self.password}\n")
        pg = os.environ["PIPELINE_PG_PORT"]
        sh(f"psql -q -h 127.0.0.1 -p {pg} -U postgres -d postgres -c 'CREATE DATABASE {self.db}'")
        self.key = os.path.join(self.work, "engine-signing.pem")
        sh(f"openssl ecparam -name prime256v1 -genkey -noout -out {self.key}")
        self.restart_clamd()
        setup_dir = os.path.join(self.work, "setup")
        os.makedirs(os.path.join(setup_dir, "pipelines"))
        os.makedirs(os.path.join(setup_dir, "rootfs", "bin"))
        for name in ("busybox", "sh"):
            shutil.copy("/bin/busybox", os.path.join(setup_dir, "rootfs", "bin", name))
        self.write_engine_yaml(setup_dir)
        r = subprocess.run([a.engine, "--config", os.path.join(setup_dir, "engine.yaml"), "base-image", "--rootfs", os.path.join(setup_dir, "rootfs"),
                            "--repository", "bench/e2e-base", "--tag", "v1"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("bench: base-image failed:\n" + r.stdout + r.stderr)
        self.base = r.stdout.strip().splitlines()[-1]
        t0 = time.monotonic()
        self.files, self.bytes = gen.generate(self.work, a.mb, a.files, a.seed, self.base, self.env)
        gen_s = time.monotonic() - t0
        self.vcs_a = f"supplier/e2e-{self.run_id}.git"
        bare = os.path.join(self.git_root, self.vcs_a)
        # pack.window=0: no delta search over the incompressible binaries just for setting up (minutes at 1 GB).
        sh(f"git init -q --bare {bare} && git -C {self.work}/supplier -c pack.window=0 push -q {bare} main v1.0.0", env=self.env)
        self.allowed = os.path.join(self.work, "allowed_signers")
        with open(self.allowed, "w") as f:
            f.write('release@supplier.example namespaces="git" ' + open(os.path.join(self.work, "release.pub")).read())
        pack = sum(os.path.getsize(os.path.join(dp, n)) for dp, _, ns in os.walk(os.path.join(bare, "objects")) for n in ns)
        print(f"delivery: {self.files} files, {self.bytes / MB:.1f} MB (seed {a.seed}), git pack in VCS A {pack / MB:.1f} MB, generated in {gen_s:.1f} s; "
              f"base {self.registry}/{self.base}")
        print(f"VCS A {self.git_http}/{self.vcs_a}; VCS B {self.git_http}/internal; registry {self.registry}; database {self.db}; "
              f"own clamd {self.sock} (config of {os.environ['PIPELINE_CLAMD_CONFIG']}, restarted before every round), engine clamd.parallelism {a.parallelism}")
        sys.stdout.flush()

    def write_engine_yaml(self, d):
        with open(os.path.join(d, "engine.yaml"), "w") as f:
            f.write(f"""pipelines: pipelines
workDir: work
database:
  connectionString: "Host=127.0.0.1;Port={os.environ['PIPELINE_PG_PORT']};Username=postgres;Database={self.db}"
clamd:
  endpoints: [unix://{self.sock}]
  parallelism: {self.a.parallelism}
  configFile: {self.conf}
registry:
  url: http://{self.registry}
internalGit:
  url: {self.git_http}/internal
  credentialsFile: {self.work}/git.cred
attestation:
  signingKeyFile: {self.key}
ledger:
  checkpointDir: {self.work}/checkpoints
  origin: bench.example/e2e
""")

    # ---- the engine: `pipeline run`, phases from its JSON log, memory from /proc
    def engine_round(self, k):
        self.restart_clamd()
        name = f"e2e-{self.run_id}-{k}"
        d = os.path.join(self.work, f"engine-{k}")
        os.makedirs(os.path.join(d, "pipelines", "policies"))
        self.write_engine_yaml(d)
        # The built-in policy's limits, with room for the delivery: its 2 GiB maxTotalSize rejects 4 GB (SCAN-REJECTED),
        # as a security team would raise it for a pipeline with big deliveries.
        total_mib = max(2048, 2 * self.a.mb)
        with open(os.path.join(d, "pipelines", "policies", "bench.yaml"), "w") as f:
            f.write(f"name: bench\ndescription: built-in limits, maxTotalSize sized for the benchmark\n"
                    f"defaults:\n  limits:\n    maxTotalSize: {total_mib}MiB\nprofiles:\n  - name: normal\n")
        vcs_b = os.path.join(self.git_root, "internal", "e2e", name + ".git")
        sh(f"git init -q --bare {vcs_b}", env=self.env)
        with open(os.path.join(d, "pipelines", name + ".yaml"), "w") as f:
            f.write(f"""name: {name}
supplier: Bench Supplier GmbH
schedule: "0 0 0 1 1 ?"
source:
  url: {self.git_http}/{self.vcs_a}
  credentialsFile: {self.work}/git.cred
  tagPattern: '^v\\d+\\.\\d+\\.\\d+$'
signers:
  - name: Bench Release Key
    organisation: Bench Supplier GmbH
    sshKey: {open(os.path.join(self.work, 'release.pub')).read().strip()}
    validFrom: 2020-01-01
checksums:
  manifest: SHA256SUMS
scan:
  policy: bench
  profile: normal
publish:
  repository: e2e/{name}
images:
  repositoryPrefix: bench/e2e-{self.run_id}-{k}
  allowedBaseImages:
    - {self.base}
""")
        clamd0, busy0 = self.clamd_cpu(), measure.machine_busy_seconds()
        t0 = time.monotonic()
        p = subprocess.Popen([self.a.engine, "--config", os.path.join(d, "engine.yaml"), "--log-json", "run", name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler = measure.Sampler(p.pid)
        marks, lines, failed = [("startup", 0.0, 0.0)], [], []

        def mark(phase):
            marks.append((phase, time.monotonic() - t0, measure.cpu_seconds(p.pid)))
            sampler.phase = phase

        def read_log():
            for line in p.stderr:
                lines.append(line)
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                mt = ev.get("@mt", "")
                if mt.startswith("Fetching tags"):
                    mark("git-fetch")
                elif mt.startswith("Delivery {DeliveryId} of"):
                    mark("fetch")
                elif mt.startswith("Stage {Stage} passed"):
                    i = ENGINE_STAGES.index(ev["Stage"])
                    mark(ENGINE_STAGES[i + 1] if i + 1 < len(ENGINE_STAGES) else "accept")
                elif mt.startswith("Stage {Stage} failed") or mt.startswith("Stage {Stage} could not"):
                    failed.append(line)

        reader = threading.Thread(target=read_log, daemon=True)
        reader.start()
        stdout = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        total = time.monotonic() - t0
        reader.join()
        sampler.stop()
        rc = os.waitstatus_to_exitcode(status)
        if rc != 0 or failed:
            sys.exit(f"bench: engine round {k} failed (exit {rc}):\n{stdout}\n{''.join(lines[-30:])}")
        marks.append(("end", total, ru.ru_utime + ru.ru_stime))
        phases = {}
        for (ph, t, c), (_, t2, c2) in zip(marks, marks[1:]):
            phases[ph] = (t2 - t, c2 - c)
        anon, rss = sampler.peak()
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(vcs_b, ignore_errors=True)
        return {"total": total, "cpu": ru.ru_utime + ru.ru_stime, "phases": phases, "anon": anon, "rss": rss, "peaks": dict(sampler.peaks),
                "maxrss": ru.ru_maxrss * 1024, "clamd_cpu": self.clamd_cpu() - clamd0, "machine_cpu": measure.machine_busy_seconds() - busy0}

    # ---- the shell pipeline of standard tools
    def shell_round(self, k):
        self.restart_clamd()
        name = f"e2e-{self.run_id}-{k}-shell"
        d = os.path.join(self.work, f"shell-{k}")
        os.makedirs(d)
        vcs_b = os.path.join(self.git_root, "internal", "e2e", name + ".git")
        sh(f"git init -q --bare {vcs_b}", env=self.env)
        auth = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        env = dict(self.env, GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader", GIT_CONFIG_VALUE_0=f"Authorization: Basic {auth}")
        reg, layout = self.registry, f"{d}/layout"
        steps = {
            "fetch": f"git init -q --bare m.git && git -C m.git fetch -q {self.git_http}/{self.vcs_a} '+refs/tags/*:refs/tags/*'",
            "export": "mkdir tree && git -C m.git archive v1.0.0 | tar -x -C tree",
            "verify": f"git -C m.git -c gpg.ssh.allowedSignersFile={self.allowed} verify-tag v1.0.0 2>/dev/null && cd tree && sha256sum -c --quiet --strict SHA256SUMS",
            "scan": f"clamdscan -c {self.conf} --multiscan --fdpass --no-summary --quiet tree",
            "publish": f"git -C m.git push -q {self.git_http}/internal/e2e/{name}.git refs/tags/v1.0.0:refs/tags/v1.0.0",
            "build+push": (f"skopeo copy -q --src-tls-verify=false docker://{reg}/{self.base} oci:{layout}:app && "
                           f"umoci insert --image {layout}:app tree/bin /opt/app/bin && umoci insert --image {layout}:app tree/lib /opt/app/lib && "
                           f"umoci config --image {layout}:app --config.entrypoint /opt/app/bin/app-00.bin --config.user 10001:10001 --config.workingdir /opt/app && "
                           f"skopeo copy -q --dest-tls-verify=false oci:{layout}:app docker://{reg}/bench/e2e-{self.run_id}-{k}-shell/app:v1.0.0"),
        }
        if self.a.skopeo_cache == "empty":
            # skopeo's blob-info cache (root: /var/lib/containers/cache) remembers the repository of every
            # blob it pushed and MOUNTS the same blob from there on the next push instead of uploading it.
            # Every round pushes the same delivery, so from round 2 on skopeo would upload nothing (the 1 GB
            # run measured 2.9 s for build+push that way, against 11.8 s in its first round). A new delivery
            # has new layers; so each round's build+push step gets an empty cache of its own (private mount
            # namespace, tmpfs over the cache directory), as the engine starts each round with an empty work dir.
            os.makedirs("/var/lib/containers/cache", exist_ok=True)
            inner = steps["build+push"].replace("'", "'\\''")
            steps["build+push"] = f"unshare --mount --propagation private bash -c 'mount -t tmpfs tmpfs /var/lib/containers/cache && {inner}'"
        res = {"phases": {}, "maxrss": {}}
        clamd0, busy0 = self.clamd_cpu(), measure.machine_busy_seconds()
        t0 = time.monotonic()
        for step in SHELL_STEPS:
            secs, cpu, maxrss, rc, out = measure.run_measured(steps[step], env=env, cwd=d)
            if rc != 0:
                sys.exit(f"bench: shell step {step} failed (exit {rc}):\n{out[-3000:]}")
            res["phases"][step] = (secs, cpu)
            res["maxrss"][step] = maxrss
        res["total"] = time.monotonic() - t0
        res["cpu"] = sum(c for _, c in res["phases"].values())
        res["clamd_cpu"], res["machine_cpu"] = self.clamd_cpu() - clamd0, measure.machine_busy_seconds() - busy0
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(vcs_b, ignore_errors=True)
        return res

    def cleanup(self):
        self.stop_clamd()
        shutil.rmtree(os.path.join(self.git_root, self.vcs_a), ignore_errors=True)
        subprocess.run(f"psql -q -h 127.0.0.1 -p {os.environ['PIPELINE_PG_PORT']} -U postgres -d postgres -c 'DROP DATABASE IF EXISTS {self.db}'", shell=True)
        if not self.a.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def fmt_engine(r):
    ph = " ".join(f"{p} {s:.1f}" for p, (s, _) in r["phases"].items())
    return f"{r['total']:.1f} s ({ph}); CPU {r['cpu']:.1f} s, machine {r['machine_cpu']:.1f} s (clamd {r['clamd_cpu']:.1f}); own anon peak {r['anon'] / MB:.0f} MB, resident peak {r['rss'] / MB:.0f} MB"


def fmt_shell(r):
    ph = " ".join(f"{p} {s:.1f}" for p, (s, _) in r["phases"].items())
    return f"{r['total']:.1f} s ({ph}); CPU {r['cpu']:.1f} s, machine {r['machine_cpu']:.1f} s (clamd {r['clamd_cpu']:.1f}); largest process {max(r['maxrss'].values()) / MB:.0f} MB"


def report(b, eng, shl):
    med = statistics.median
    print()
    print(f"{'stage':<18} {'engine s':>9} {'shell s':>8} {'eng/shell':>9} {'eng CPU s':>9} {'sh CPU s':>8} {'eng anon/rss peak MB':>21} {'shell max RSS MB':>16}")
    eng_stage = {}
    for row, phases, step in ROWS:
        e = med([sum(r["phases"].get(p, (0, 0))[0] for p in phases) for r in eng])
        ec = med([sum(r["phases"].get(p, (0, 0))[1] for p in phases) for r in eng])
        s = med([r["phases"][step][0] for r in shl])
        scpu = med([r["phases"][step][1] for r in shl])
        ea = max(max(r["peaks"].get(p, (0, 0))[0] for p in phases) for r in eng)
        er = max(max(r["peaks"].get(p, (0, 0))[1] for p in phases) for r in eng)
        sm = max(r["maxrss"][step] for r in shl)
        eng_stage[row] = e
        print(f"{row:<18} {e:>9.1f} {s:>8.1f} {e / s:>8.2f}x {ec:>9.1f} {scpu:>8.1f} {ea / MB:>10.0f} / {er / MB:<8.0f} {sm / MB:>16.0f}")
    other = med([r["phases"].get("startup", (0, 0))[0] + r["phases"].get("accept", (0, 0))[0] for r in eng])
    print(f"{'(engine start, accept+attach)':<30} {other:.1f} s")
    et, st = med([r["total"] for r in eng]), med([r["total"] for r in shl])
    print(f"{'total':<18} {et:>9.1f} {st:>8.1f} {et / st:>8.2f}x {med([r['cpu'] for r in eng]):>9.1f} {med([r['cpu'] for r in shl]):>8.1f}")
    pairs = [e["total"] / s["total"] for e, s in zip(eng, shl)]
    print(f"per-pair ratio engine/shell (total): median {med(pairs):.2f}x, min {min(pairs):.2f}x, max {max(pairs):.2f}x  ({' '.join(f'{x:.2f}' for x in pairs)})")
    slow_row = max(eng_stage, key=eng_stage.get)
    overlap = et / eng_stage[slow_row]
    shell_slow = max(SHELL_STEPS, key=lambda s: med([r["phases"][s][0] for r in shl]))
    shell_overlap = st / med([r["phases"][shell_slow][0] for r in shl])
    print(f"overlap: engine total / slowest stage ({slow_row}) = {overlap:.2f}; shell total / slowest step ({shell_slow}) = {shell_overlap:.2f}")
    bounds(eng, shl, eng_stage, et, st)
    anon = [r["anon"] for r in eng]
    rss = [r["rss"] for r in eng]
    print(f"engine peak memory (process tree, sampled every 50 ms from /proc): own anonymous (RssAnon) median {med(anon) / MB:.0f} MB, max {max(anon) / MB:.0f} MB; "
          f"resident incl. mapped files (VmRSS) median {med(rss) / MB:.0f} MB, max {max(rss) / MB:.0f} MB; VmHWM of the engine process max {max(r['maxrss'] for r in eng) / MB:.0f} MB")
    print(f"\nRESULT delivery={b.bytes / MB:.0f}MB/{b.files}files rounds={len(eng)} engine={et:.1f}s shell={st:.1f}s ratio={med(pairs):.2f}x "
          f"(min {min(pairs):.2f} max {max(pairs):.2f}) publish={eng_stage['publish to VCS B']:.1f}s/{med([r['phases']['publish'][0] for r in shl]):.1f}s "
          f"overlap={overlap:.2f} anon_peak={max(anon) / MB:.0f}MB rss_peak={max(rss) / MB:.0f}MB")
    print(f"targets (issue 12): end to end <= 0.50x {'MET' if med(pairs) <= 0.5 else 'NOT met'}; overlap <= 1.3 {'MET' if overlap <= 1.3 else 'NOT met'}; "
          f"own memory < 300 MB {'MET' if max(anon) < 300 * MB else 'NOT met'}")


def bounds(eng, shl, eng_stage, et, st):
    """What bounds a round on this machine, measured in the same rounds: the CPU of every process on
    the machine (the engine or the shell's tools, clamd, the git server, the registry, the database)
    spread over all cores, and the critical path the rules fix (fetch, then the verdict, then publish)."""
    med, n = statistics.median, os.cpu_count()
    em, sm = med([r["machine_cpu"] for r in eng]), med([r["machine_cpu"] for r in shl])
    ec, sc = med([r["clamd_cpu"] for r in eng]), med([r["clamd_cpu"] for r in shl])
    eo, so = med([r["cpu"] for r in eng]), med([r["cpu"] for r in shl])
    print(f"machine CPU per round (all processes): engine round {em:.1f} s = engine {eo:.1f} + clamd {ec:.1f} + services (git server, registry, database) {em - eo - ec:.1f}; "
          f"shell round {sm:.1f} s = tools {so:.1f} + clamd {sc:.1f} + services {sm - so - sc:.1f}")
    print(f"on {n} cores an engine round needs at least {em / n:.1f} s = {em / n / st:.2f}x the shell's total (busy {em / n / et:.0%} of its {et:.1f} s); "
          f"without any CPU of the engine's own, clamd and the services alone need {(em - eo) / n:.1f} s = {(em - eo) / n / st:.2f}x")
    shell_path = sum(med([r["phases"][p][0] for r in shl]) for p in ("fetch", "scan", "publish"))
    eng_path = sum(eng_stage[row] for row in ("fetch (git)", "scan", "publish to VCS B"))
    print(f"critical path the rules fix (the bytes are here -> verdict -> publish; nothing leaves before the verdict): "
          f"shell's fetch+scan+publish {shell_path:.1f} s = {shell_path / st:.2f}x the shell's total; engine's {eng_path:.1f} s = {eng_path / st:.2f}x; "
          f"engine total / its critical path = {et / eng_path:.2f}")
    print(f"BOUNDS cpu_floor={em / n:.1f}s ({em / n / st:.2f}x) shell_critical_path={shell_path:.1f}s ({shell_path / st:.2f}x) engine_critical_path={eng_path:.1f}s ({eng_path / st:.2f}x)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=200)
    p.add_argument("--files", type=int, default=400)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=20261201)
    p.add_argument("--parallelism", type=int, default=8, help="the engine's clamd.parallelism")
    p.add_argument("--work", default="/tmp/pipeline-e2e-bench")
    p.add_argument("--state", required=True)
    p.add_argument("--engine", required=True)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--skopeo-cache", choices=["empty", "shared"], default="empty",
                   help="empty (default): every shell round's skopeo starts with an empty blob-info cache; shared: the machine's cache (skopeo mounts layers pushed by earlier rounds)")
    a = p.parse_args()
    print(f"e2e bench: {a.mb} MB in {a.files} files, warm-up pair + {a.rounds} alternating round(s); {os.cpu_count()} cores, load {open('/proc/loadavg').read().strip()}; "
          f"skopeo blob-info cache: {a.skopeo_cache}")
    b = Bench(a)
    try:
        b.setup()
        print(f"  warm-up (not counted): engine {fmt_engine(b.engine_round(0))}", flush=True)
        print(f"  warm-up (not counted): shell  {fmt_shell(b.shell_round(0))}", flush=True)
        eng, shl = [], []
        for k in range(1, a.rounds + 1):
            order = ["shell", "engine"] if k % 2 else ["engine", "shell"]
            for who in order:
                if who == "engine":
                    eng.append(b.engine_round(k))
                    print(f"  round {k}/{a.rounds}: engine {fmt_engine(eng[-1])}", flush=True)
                else:
                    shl.append(b.shell_round(k))
                    print(f"  round {k}/{a.rounds}: shell  {fmt_shell(shl[-1])}", flush=True)
        report(b, eng, shl)
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
