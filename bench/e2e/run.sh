#!/usr/bin/env bash
# End-to-end benchmark (issue 12): a seeded, signed delivery from VCS A to a pushed image, the
# engine (`pipeline run`) against a shell pipeline of standard tools (git fetch, git verify-tag,
# git archive | tar -x, sha256sum -c, clamdscan --multiscan --fdpass, git push, umoci + skopeo
# copy), alternating rounds after a warm-up pair, the same registry and git server, and an OWN
# clamd (the shared one's config, unix socket only) restarted before every round: clamd caches
# clean files by digest. Writes its output to bench/e2e/last-run.txt as well.
#   bench/e2e/run.sh [--mb 200] [--files 400] [--rounds 3] [--seed N] [--parallelism 8] [--work DIR] [--keep]
# The issue's sizes: --mb 1024 --files 2000 and --mb 4096 --files 2000.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ENV_FILE=${PIPELINE_SERVICES_ENV:-${PIPELINE_STATE_DIR:-$REPO_ROOT/.state}/services.env}
[[ -f $ENV_FILE ]] || { echo "bench: $ENV_FILE not found; start scripts/services.sh first" >&2; exit 2; }
set -a
# shellcheck disable=SC1090
. "$ENV_FILE"
set +a
STATE=$REPO_ROOT/bench/e2e/.state
OUT=$STATE/engine
mkdir -p "$STATE"
dotnet build "$REPO_ROOT/Pipeline.Engine/Pipeline.Engine.csproj" -c Release -o "$OUT" -nologo -v quiet -clp:NoSummary >"$STATE/build.log" 2>&1 \
  || { cat "$STATE/build.log" >&2; exit 2; }
python3 "$REPO_ROOT/bench/e2e/e2e.py" --engine "$OUT/pipeline" --state "$STATE" "$@" 2>&1 | tee "$REPO_ROOT/bench/e2e/last-run.txt"
exit "${PIPESTATUS[0]}"
