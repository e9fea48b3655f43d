#!/usr/bin/env bash
# Scan benchmark: builds bench/Scan.Bench (Release) and runs it against a clamd.
#   bench/scan/run.sh [--shared-clamd] [--size 1GB] [--files 2000] [--parallel N] [--rounds 5] [--seed N] [--dir DIR]
# By default it starts its OWN clamd (same config as the shared one from scripts/services.sh, same
# signature database, other socket/port) so the other users of the shared clamd neither disturb the
# measurement nor get disturbed; --shared-clamd uses the shared clamd instead. Reads
# PIPELINE_SERVICES_ENV (or .state/services.env) for the shared clamd's address and config file.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ENV_FILE=${PIPELINE_SERVICES_ENV:-$REPO_ROOT/.state/services.env}
[[ -f $ENV_FILE ]] || { echo "bench: $ENV_FILE not found; start scripts/services.sh first" >&2; exit 2; }
set -a
# shellcheck disable=SC1090
. "$ENV_FILE"
set +a
SHARED_CONF=$PIPELINE_STATE_DIR/clamd/clamd.conf
OUT=$REPO_ROOT/bench/Scan.Bench/bin/out
own=1
args=()
for a in "$@"; do
  if [[ $a == --shared-clamd ]]; then own=0; else args+=("$a"); fi
done
dotnet build "$REPO_ROOT/bench/Scan.Bench/Scan.Bench.csproj" -c Release -o "$OUT" -nologo -v quiet -clp:NoSummary

if [[ $own == 0 ]]; then
  exec "$OUT/Scan.Bench" --clamd "unix://$PIPELINE_CLAMD_SOCKET" --clamd-conf "$SHARED_CONF" "${args[@]}"
fi

# Own clamd: the shared config line for line, except where it listens, logs and keeps temp files.
BENCH_STATE=${BENCH_STATE:-$REPO_ROOT/bench/scan/.state}
mkdir -p "$BENCH_STATE/tmp"
SOCK=$BENCH_STATE/clamd.sock
CONF=$BENCH_STATE/clamd.conf
PORT=${BENCH_CLAMD_PORT:-3399}
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then echo "bench: port $PORT is in use; set BENCH_CLAMD_PORT" >&2; exit 2; fi
rm -f "$SOCK"
sed -e "s|^TCPSocket .*|TCPSocket $PORT|" \
    -e "s|^LocalSocket .*|LocalSocket $SOCK|" \
    -e "s|^LogFile .*|LogFile $BENCH_STATE/clamd.log|" \
    -e "s|^TemporaryDirectory .*|TemporaryDirectory $BENCH_STATE/tmp|" \
    -e "s|^# written by .*|# bench copy of $SHARED_CONF (only sockets, log and temp dir changed)|" \
    "$SHARED_CONF" >"$CONF"
clamd -c "$CONF" >"$BENCH_STATE/clamd-stdout.log" 2>&1 &
CLAMD_PID=$!
trap 'kill "$CLAMD_PID" 2>/dev/null; wait "$CLAMD_PID" 2>/dev/null; rm -f "$SOCK"' EXIT
for _ in $(seq 1 120); do
  reply=$( { printf 'zPING\0' | nc -U -w 3 "$SOCK" 2>/dev/null | tr -d '\0'; } || true)
  [[ $reply == PONG ]] && break
  kill -0 "$CLAMD_PID" 2>/dev/null || { echo "bench: own clamd died:" >&2; tail -20 "$BENCH_STATE/clamd.log" >&2; exit 2; }
  sleep 0.5
done
[[ ${reply:-} == PONG ]] || { echo "bench: own clamd did not answer PING" >&2; exit 2; }
echo "bench: own clamd pid $CLAMD_PID on $SOCK and 127.0.0.1:$PORT"
"$OUT/Scan.Bench" --clamd "unix://$SOCK" --clamd-conf "$CONF" "${args[@]}"
