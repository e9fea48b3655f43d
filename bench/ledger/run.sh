#!/usr/bin/env bash
# Ledger benchmark: appends N entries to the transparency log in a fresh PostgreSQL database (created
# and dropped here), then times inclusion proofs, traces and a full `audit verify` at that size.
# First it measures the engine's one-entry append path with --appenders concurrent appenders per
# process, in 1 and in 2 processes at once (two engines on one database), with group commit and with
# the one-by-one path before it ("baseline"), --single entries per measure, and prints the ratio.
# The output is also written to bench/ledger/last-run.txt (PIPELINE_BENCH_LAST to change).
# Needs PostgreSQL (scripts/services.sh start); the connection comes from PIPELINE_PG_CONN or the
# services env file (PIPELINE_SERVICES_ENV, else .state/services.env).
#   bench/ledger/run.sh [--entries 1000000] [--batch 5000] [--single 2000] [--appenders 8] [--samples 1000] [--traces 200] [--keep]
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${PIPELINE_BENCH_OUT:-$REPO_ROOT/.state/bench/ledger-bench}
if [[ -z ${PIPELINE_PG_CONN:-} ]]; then
  env_file=${PIPELINE_SERVICES_ENV:-$REPO_ROOT/.state/services.env}
  [[ -f $env_file ]] || { echo "no PIPELINE_PG_CONN and no $env_file: start the services first (scripts/services.sh start)" >&2; exit 2; }
  PIPELINE_PG_CONN=$(sed -n 's/^PIPELINE_PG_CONN=//p' "$env_file" | tr -d '"')
  export PIPELINE_PG_CONN
fi
dotnet build "$REPO_ROOT/bench/Ledger.Bench/Ledger.Bench.csproj" -c Release -o "$OUT" -nologo -v quiet -clp:NoSummary
LAST=${PIPELINE_BENCH_LAST:-$REPO_ROOT/bench/ledger/last-run.txt}
{ echo "# bench/ledger/run.sh $* ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"; "$OUT/Ledger.Bench" "$@"; } | tee "$LAST"
exit "${PIPESTATUS[0]}"
