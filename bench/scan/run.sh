#!/usr/bin/env bash
# Scan benchmark: builds bench/Scan.Bench (Release) and runs it against the local clamd.
#   bench/scan/run.sh [--size 1GB] [--files 2000] [--parallel 4] [--seed N] [--dir DIR]
# Reads PIPELINE_SERVICES_ENV (or .state/services.env) for clamd's address and config file.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ENV_FILE=${PIPELINE_SERVICES_ENV:-$REPO_ROOT/.state/services.env}
[[ -f $ENV_FILE ]] || { echo "bench: $ENV_FILE not found; start scripts/services.sh first" >&2; exit 2; }
set -a
# shellcheck disable=SC1090
. "$ENV_FILE"
set +a
CONF=$PIPELINE_STATE_DIR/clamd/clamd.conf
OUT=$REPO_ROOT/bench/Scan.Bench/bin/out
dotnet build "$REPO_ROOT/bench/Scan.Bench/Scan.Bench.csproj" -c Release -o "$OUT" -nologo -v quiet -clp:NoSummary
exec "$OUT/Scan.Bench" --clamd "unix://$PIPELINE_CLAMD_SOCKET" --clamd-conf "$CONF" "$@"
