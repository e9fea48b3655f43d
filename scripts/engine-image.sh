#!/usr/bin/env bash
# Builds the engine's own container image without Docker and without any public registry, and runs it:
#   1. `dotnet publish` (framework-dependent) of Pipeline.Engine, or the build output folder named by
#      PIPELINE_ENGINE_BUILD (the test suite passes its own build: a Release publish takes minutes here);
#   2. a root file system from local files only: the publish output in /app, the .NET runtime of this
#      machine (/usr/share/dotnet: host, hostfxr, Microsoft.NETCore.App, Microsoft.AspNetCore.App) and
#      the shared libraries `ldd` names for them (plus libssl/libcrypto, which .NET loads with dlopen),
#      /etc/passwd with the unprivileged user pipeline (10001), an engine.yaml and the example pipelines;
#   3. `pipeline base-image` (the project's daemonless, deterministic builder) pushes it to the local registry;
#   4. the real dockerd pulls it and runs it as 10001:10001 with a read-only root file system, no network,
#      no capabilities: `pipeline --version` and `pipeline check` must answer.
# Needs the services of scripts/services.sh (registry, dockerd); prints "engine image: OK" at the end.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${PIPELINE_STATE_DIR:-$REPO_ROOT/.state}
env_file=$STATE/services.env
[[ -f $env_file ]] || { echo "[engine-image] ERROR: $env_file missing: run scripts/services.sh start --docker" >&2; exit 1; }
while IFS= read -r line || [[ -n $line ]]; do
  [[ -z $line || $line == \#* ]] && continue
  value=${line#*=}
  if [[ ${#value} -ge 2 && $value == \"*\" ]]; then value=${value:1:-1}; fi
  export "${line%%=*}=$value"
done <"$env_file"
: "${PIPELINE_REGISTRY:?}" "${PIPELINE_DOCKER_HOST:?}"
DOTNET_HOME=$(dirname "$(readlink -f "$(command -v dotnet)")")
say() { echo "[engine-image] $*"; }
started=$SECONDS

WORK=$(mktemp -d /tmp/pipeline-engine-image.XXXXXX)
IMAGE=""
cleanup() {
  [[ -n $IMAGE ]] && docker -H "$PIPELINE_DOCKER_HOST" rmi -f "$IMAGE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say "publishing the engine (framework-dependent)${PIPELINE_ENGINE_BUILD:+: using the build in $PIPELINE_ENGINE_BUILD}"
if [[ -n ${PIPELINE_ENGINE_BUILD:-} ]]; then cp -a "$PIPELINE_ENGINE_BUILD/." "$WORK/app/"; else
dotnet publish "$REPO_ROOT/Pipeline.Engine/Pipeline.Engine.csproj" -c Release -o "$WORK/app" -p:UseAppHost=true -nologo -v quiet >"$WORK/publish.log" 2>&1 \
  || { cat "$WORK/publish.log" >&2; exit 1; }
fi
VERSION=$("$WORK/app/pipeline" --version)

R=$WORK/rootfs
say "assembling the root file system from this machine's .NET $(ls "$DOTNET_HOME/shared/Microsoft.NETCore.App") and libraries"
mkdir -p "$R/app" "$R/usr/share/dotnet/shared" "$R/etc/pipeline/work" "$R/etc/dotnet" "$R/tmp" "$R/var/lib/pipeline"
cp -a "$WORK/app/." "$R/app/"
rm -f "$R"/app/*.pdb
# Native libraries for this platform only (LibGit2Sharp ships many).
find "$R/app/runtimes" -mindepth 1 -maxdepth 1 -type d ! -name linux-x64 -exec rm -rf {} +
cp -a "$DOTNET_HOME/dotnet" "$DOTNET_HOME/host" "$R/usr/share/dotnet/"
cp -a "$DOTNET_HOME/shared/Microsoft.NETCore.App" "$DOTNET_HOME/shared/Microsoft.AspNetCore.App" "$R/usr/share/dotnet/shared/"
echo /usr/share/dotnet >"$R/etc/dotnet/install_location"
# git: export (cat-file --batch) and the publish to VCS B run the locked-down git binary; smart HTTP
# needs its remote helpers (hard links of one program in git-core: copied as regular files).
mkdir -p "$R/usr/bin" "$R/usr/lib/git-core"
cp -L "$(command -v git)" "$R/usr/bin/git"
for helper in git-remote-http git-remote-https; do cp -L "/usr/lib/git-core/$helper" "$R/usr/lib/git-core/$helper"; done
# Every shared library the runtime, the engine and its native packages need (ldd), dereferenced.
mapfile -t objects < <(find "$R/usr/share/dotnet" "$R/app" "$R/usr/bin" "$R/usr/lib/git-core" -type f \( -name '*.so' -o -name '*.so.*' -o -name dotnet -o -name pipeline -o -name git -o -name 'git-remote-*' \))
libs=$(for o in "${objects[@]}"; do { ldd "$o" 2>/dev/null || true; } | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}'; done | sort -u)
# Regular files only (the builder refuses symbolic links): every library under /lib/x86_64-linux-gnu,
# which the loader searches without an ld.so.cache, and the loader itself where ELF files name it.
mkdir -p "$R/lib/x86_64-linux-gnu" "$R/lib64"
for l in $libs /usr/lib/x86_64-linux-gnu/libssl.so.3 /usr/lib/x86_64-linux-gnu/libcrypto.so.3; do
  [[ -e $l ]] || continue
  case $(basename "$l") in
    ld-linux-x86-64.so.2) cp -L "$l" "$R/lib64/ld-linux-x86-64.so.2" ;;
    *) cp -L "$l" "$R/lib/x86_64-linux-gnu/$(basename "$l")" ;;
  esac
done
[[ -f $R/lib64/ld-linux-x86-64.so.2 ]] || cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\npipeline:x:10001:10001:pipeline engine:/var/lib/pipeline:/usr/sbin/nologin\n' >"$R/etc/passwd"
printf 'root:x:0:\npipeline:x:10001:\n' >"$R/etc/group"
cp -a "$REPO_ROOT/pipelines" "$R/etc/pipeline/pipelines"
cat >"$R/etc/pipeline/engine.yaml" <<'YAML'
pipelines: pipelines
workDir: /var/lib/pipeline/work
database:
  connectionString: "Host=127.0.0.1;Port=5432;Username=pipeline;Database=pipeline"
clamd:
  endpoints: [tcp://127.0.0.1:3310]
  limits: { maxFileSize: 64MiB, maxScanSize: 256MiB, maxRecursion: 8, maxFiles: 10000, streamMaxLength: 64MiB }
registry:
  url: http://127.0.0.1:5000
internalGit:
  url: http://127.0.0.1:8088/git/internal
logging:
  format: json
metrics:
  listen: 127.0.0.1:9464
YAML
say "root file system: $(du -sh "$R" | cut -f1), $(echo "$libs" | wc -w) libraries"

cat >"$WORK/engine.yaml" <<YAML
pipelines: $R/etc/pipeline/pipelines
workDir: $WORK/builder-work
database:
  connectionString: "Host=127.0.0.1;Username=unused"
clamd:
  endpoints: [tcp://127.0.0.1:3310]
  limits: { maxFileSize: 64MiB, maxScanSize: 256MiB, maxRecursion: 8, maxFiles: 10000, streamMaxLength: 64MiB }
registry:
  url: http://$PIPELINE_REGISTRY
internalGit:
  url: http://127.0.0.1:8088/git/internal
YAML
say "building and pushing with pipeline base-image (daemonless)"
TAG=test-$(date +%s)-$$
REF=$("$WORK/app/pipeline" --config "$WORK/engine.yaml" base-image --rootfs "$R" --repository pipeline-tests/engine --tag "$TAG")
IMAGE=$PIPELINE_REGISTRY/$REF
say "pushed $IMAGE"

docker() { command docker -H "$PIPELINE_DOCKER_HOST" "$@"; }
docker pull -q "$IMAGE" >/dev/null
# Secrets are never baked into the image: the example definition's credentials file is mounted read-only.
mkdir -p "$WORK/secrets" && printf 'supplier:placeholder\n' >"$WORK/secrets/supplier-beispiel.cred" && chmod 0755 "$WORK/secrets" && chmod 0644 "$WORK/secrets/supplier-beispiel.cred"
run() {
  docker run --rm -v "$WORK/secrets:/etc/pipeline/secrets:ro" --read-only --user 10001:10001 --network none --cap-drop ALL --security-opt no-new-privileges \
    --tmpfs /tmp:rw,noexec,nosuid,size=64m --tmpfs /var/lib/pipeline:rw,noexec,nosuid,uid=10001,gid=10001,size=64m \
    -e DOTNET_ROOT=/usr/share/dotnet -e PIPELINE_CONFIG=/etc/pipeline/engine.yaml --entrypoint /app/pipeline "$IMAGE" "$@"
}
got=$(run --version)
[[ $got == "$VERSION" ]] || { echo "[engine-image] FAIL: pipeline --version in the container said '$got', expected '$VERSION'" >&2; exit 1; }
say "pipeline --version (uid 10001, read-only root): $got"
check=$(run check 2>&1) || { echo "[engine-image] FAIL: pipeline check in the container: $check" >&2; exit 1; }
[[ $check == "configuration OK: /etc/pipeline/engine.yaml, "* ]] || { echo "[engine-image] FAIL: unexpected answer of pipeline check: $check" >&2; exit 1; }
say "pipeline check: $check"
gitv=$(docker run --rm --read-only --user 10001:10001 --network none --entrypoint /usr/bin/git "$IMAGE" --version 2>&1) \
  || { echo "[engine-image] FAIL: git in the container: $gitv" >&2; exit 1; }
helpers=$(docker run --rm --read-only --user 10001:10001 --network none --entrypoint /usr/bin/git "$IMAGE" remote-https 2>&1 || true)
[[ $helpers == *"remote-curl"* || $helpers == *"usage"* ]] || { echo "[engine-image] FAIL: git's https helper in the container: $helpers" >&2; exit 1; }
say "git in the image: $gitv"
whoami=$(docker run --rm --read-only --user 10001:10001 --network none --entrypoint /app/pipeline -e DOTNET_ROOT=/usr/share/dotnet "$IMAGE" check --config /nonexistent.yaml 2>&1 || true)
[[ $whoami == *"CFG-"* ]] || { echo "[engine-image] FAIL: a missing configuration must be reported with its code: $whoami" >&2; exit 1; }
say "engine image: OK ($((SECONDS - started)) s)"
