#!/usr/bin/env bash
# Promotion benchmark: ImageCopier (by digest, with referrers) vs `skopeo copy --all`, the same
# ~N MB multi-platform image, in the same run: within one registry (mount) and between two. It
# starts its OWN docker-registry processes (the shared one's config from scripts/services.sh, other
# ports and folders; a fresh target registry per copy), so it neither disturbs nor is disturbed by
# the shared registry. Needs docker-registry and skopeo (scripts/services.sh installs both).
#   bench/promote/run.sh [--mb 500] [--rounds 3] [--parallelism 4] [--work DIR] [--keep]
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${PIPELINE_BENCH_OUT:-$REPO_ROOT/.state/bench/promote-bench}
dotnet build "$REPO_ROOT/bench/Promote.Bench/Promote.Bench.csproj" -c Release -o "$OUT" -nologo -v quiet -clp:NoSummary
exec "$OUT/Promote.Bench" "$@"
