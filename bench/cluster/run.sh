#!/usr/bin/env bash
# Cluster benchmark (issue 13): two `pipeline daemon` processes on one database deliver a stream of
# tags while the node in the middle of a delivery is killed with -9 and restarted, repeatedly.
# Uses the test harness (real PostgreSQL, clamd, registry, git server: scripts/services.sh starts
# them) through the explicit test ClusterStreamBench, then prints the result.
#   bench/cluster/run.sh [--tags 8] [--later-tags 4] [--kills 4]
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tags=8 later=4 kills=4
while [[ $# -gt 0 ]]; do
  case $1 in
    --tags) tags=$2; shift 2 ;;
    --later-tags) later=$2; shift 2 ;;
    --kills) kills=$2; shift 2 ;;
    *) echo "usage: $0 [--tags N] [--later-tags N] [--kills N]" >&2; exit 2 ;;
  esac
done
result=$(mktemp)
trap 'rm -f "$result"' EXIT
export PIPELINE_BENCH_TAGS=$tags PIPELINE_BENCH_LATER_TAGS=$later PIPELINE_BENCH_KILLS=$kills PIPELINE_BENCH_RESULT=$result
"$REPO_ROOT/scripts/test.sh" --filter "FullyQualifiedName~ClusterStreamBench" >"$result.log" 2>&1 || { tail -150 "$result.log" >&2; rm -f "$result.log"; exit 1; }
rm -f "$result.log"
[[ -s $result ]] || { echo "the benchmark test did not run (explicit tests need the filter)" >&2; exit 1; }
cat "$result"
