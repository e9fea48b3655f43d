#!/usr/bin/env bash
# Installs the Sigstore public-good production trusted root from the npm package @sigstore/tuf
# (its seeds.json carries trusted_root.json, signed into the package by the Sigstore project).
# The engine never fetches a trust root at run time; this is the only place it comes from.
#   scripts/install-sigstore-root.sh DEST_FILE
set -euo pipefail
readonly PACKAGE="@sigstore/tuf@4.0.2"
dest=${1:?usage: install-sigstore-root.sh DEST_FILE}
[[ -s $dest ]] && { echo "[sigstore] trusted root already at $dest"; exit 0; }
command -v npm >/dev/null || { echo "[sigstore] ERROR: npm is needed to install the Sigstore trusted root ($PACKAGE)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "$PACKAGE" --silent >/dev/null && tar xzf ./*.tgz)
mkdir -p "$(dirname "$dest")"
node -e '
const seeds = require(process.argv[1]);
const repo = seeds["https://tuf-repo-cdn.sigstore.dev"];
if (!repo || !repo.targets || !repo.targets["trusted_root.json"]) { console.error("seeds.json has no trusted_root.json"); process.exit(1); }
const json = Buffer.from(repo.targets["trusted_root.json"], "base64").toString("utf8");
const root = JSON.parse(json);
if (!String(root.mediaType).startsWith("application/vnd.dev.sigstore.trustedroot+json")) { console.error("unexpected media type " + root.mediaType); process.exit(1); }
require("fs").writeFileSync(process.argv[2] + ".tmp", json);
' "$tmp/package/seeds.json" "$dest"
mv -f "$dest.tmp" "$dest"
echo "[sigstore] installed the production trusted root from $PACKAGE at $dest"
