#!/usr/bin/env bash
# Starts the local services (scripts/services.sh start), exports their settings and runs
# `dotnet test Pipeline.sln` with any extra arguments. Exit code = dotnet test's.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

if ! command -v dotnet >/dev/null 2>&1; then
  echo "[test] ERROR: the .NET SDK is not installed (no 'dotnet' on PATH)." >&2
  echo "[test] Install the .NET 10 SDK (https://learn.microsoft.com/dotnet/core/install/linux-debian) and run again." >&2
  exit 127
fi

scripts/services.sh start --docker

export PIPELINE_STATE_DIR=${PIPELINE_STATE_DIR:-$REPO_ROOT/.state}
env_file=$PIPELINE_STATE_DIR/services.env
[[ -f $env_file ]] || { echo "[test] ERROR: $env_file was not written by scripts/services.sh start" >&2; exit 1; }
while IFS= read -r line || [[ -n $line ]]; do
  [[ -z $line || $line == \#* ]] && continue
  value=${line#*=}
  if [[ ${#value} -ge 2 && $value == \"*\" ]]; then value=${value:1:-1}; fi
  export "${line%%=*}=$value"
done <"$env_file"
export PIPELINE_SERVICES_ENV=$env_file
export PIPELINE_REQUIRE_SERVICES=1

echo "[test] dotnet test Pipeline.sln $*"
set +e
dotnet test Pipeline.sln "$@"
rc=$?
set -e
echo "[test] dotnet test exit code: $rc"
exit $rc
