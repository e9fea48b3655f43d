"""Seeded generator of the e2e benchmark's delivery: a git work tree with a few large
incompressible binaries (bin/), many small files (lib/), text (docs/) and archives (data/),
delivery.yaml, SHA256SUMS and an SSH-signed annotated tag v1.0.0."""
import hashlib
import io
import os
import random
import subprocess
import tarfile
import zipfile

MB = 1 << 20
LARGE_MAX = 48 * MB  # clamd here: MaxFileSize/StreamMaxLength 64M; larger files are findings, not bench data

WORDS = ("Lieferung Prüfung Fachverfahren release binary checksum verified supplier operator "
         "delivery scan image layer registry tag signature manifest policy ledger stage the of and "
         "to in is for on with as by at from this that be are was").split()


def _text(rng, n):
    out, size = [], 0
    while size < n:
        line = " ".join(rng.choices(WORDS, k=rng.randint(6, 16))) + "\n"
        out.append(line)
        size += len(line.encode())
    return "".join(out).encode()[:n]


def plan(total_mb, files, seed):
    """(relative path, kind, size) for every file; kinds: large, small, text, archive."""
    rng = random.Random(seed)
    total = total_mb * MB
    large_bytes = total * 50 // 100
    n_large = max(1, -(-large_bytes // LARGE_MAX))
    n_archive = max(2, files * 2 // 100)
    n_text = max(4, files * 20 // 100)
    n_small = max(1, files - n_large - n_archive - n_text - 2)  # 2: delivery.yaml, SHA256SUMS
    archive_bytes, text_bytes = total * 3 // 100, total * 7 // 100
    small_bytes = total - large_bytes - archive_bytes - text_bytes
    out = []
    for i in range(n_large):
        out.append((f"bin/app-{i:02d}.bin", "large", large_bytes // n_large))
    weights = [rng.random() + 0.05 for _ in range(n_small)]
    s = sum(weights)
    for i, w in enumerate(weights):
        out.append((f"lib/{i % 16:02d}/part-{i:05d}.so", "small", max(1024, int(small_bytes * w / s))))
    for i in range(n_text):
        out.append((f"docs/{i % 8}/note-{i:04d}.txt", "text", max(256, text_bytes // n_text)))
    for i in range(n_archive):
        out.append((f"data/bundle-{i:03d}.{'zip' if i % 2 else 'tar.gz'}", "archive", max(4096, archive_bytes // n_archive)))
    return out


def _archive(rng, path, size):
    members = [(f"m{j}.txt", _text(rng, size // 8)) for j in range(4)] + [(f"m4.bin", rng.randbytes(size // 2))]
    buf = io.BytesIO()
    if path.endswith(".zip"):
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in members:
                z.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data)
    else:
        with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as t:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), 1767225600
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def generate(work, total_mb, files, seed, base_ref, env):
    """Writes the supplier's work tree under work/supplier and tags v1.0.0; returns (files, bytes)."""
    rng = random.Random(seed + 1)
    tree = os.path.join(work, "supplier")
    os.makedirs(tree)
    sums, total = [], 0
    for rel, kind, size in plan(total_mb, files, seed):
        path = os.path.join(tree, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        h = hashlib.sha256()
        with open(path, "wb") as f:
            if kind == "archive":
                data = _archive(rng, rel, size)
                f.write(data)
                h.update(data)
            elif kind == "text":
                data = _text(rng, size)
                f.write(data)
                h.update(data)
            else:
                left = size
                while left:
                    chunk = rng.randbytes(min(left, 4 * MB))
                    f.write(chunk)
                    h.update(chunk)
                    left -= len(chunk)
        if kind == "large":
            os.chmod(path, 0o755)
        sums.append((rel, h.hexdigest()))
        total += os.path.getsize(path)
    with open(os.path.join(tree, "delivery.yaml"), "w") as f:
        f.write(f"""version: 1
images:
  - name: app
    base: {base_ref}
    files:
      - from: bin
        to: /opt/app/bin
        mode: "0755"
      - from: lib
        to: /opt/app/lib
    entrypoint: [/opt/app/bin/app-00.bin]
    workingDir: /opt/app
    user: "10001:10001"
""")
    sums.append(("delivery.yaml", hashlib.sha256(open(os.path.join(tree, "delivery.yaml"), "rb").read()).hexdigest()))
    sums.sort()
    with open(os.path.join(tree, "SHA256SUMS"), "w") as f:
        f.writelines(f"{d}  {p}\n" for p, d in sums)
    key = os.path.join(work, "release")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "release@supplier.example", "-f", key], check=True)
    git = ["git", "-C", tree, "-c", "user.name=Supplier Release", "-c", "user.email=release@supplier.example"]
    subprocess.run(["git", "-C", tree, "init", "-q", "-b", "main"], check=True, env=env)
    subprocess.run(git + ["add", "-A"], check=True, env=env)
    subprocess.run(git + ["commit", "-q", "-m", "Release 1.0.0"], check=True, env=env)
    subprocess.run(git + ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}.pub", "tag", "-s", "v1.0.0", "-m", "Release 1.0.0"], check=True, env=env)
    return len(sums) + 1, total
