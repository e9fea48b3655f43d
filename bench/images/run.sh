#!/usr/bin/env bash
# Images benchmark: our daemonless build + push vs umoci (init/new/insert) + skopeo copy, same
# input, same registry, same run. Needs the registry (scripts/services.sh start), umoci, skopeo.
#   bench/images/run.sh [--mb 500] [--files 1000] [--registry 127.0.0.1:5000] [--work DIR] [--keep]
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${PIPELINE_BENCH_OUT:-$REPO_ROOT/.state/bench/images-bench}
dotnet build "$REPO_ROOT/bench/Images.Bench/Images.Bench.csproj" -c Release -o "$OUT" -nologo -v quiet -clp:NoSummary
exec "$OUT/Images.Bench" "$@"
