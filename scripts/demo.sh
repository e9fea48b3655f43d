#!/usr/bin/env bash
# The main job, end to end, on this machine:
#   1. starts the local services (PostgreSQL, clamd, registry, git over HTTP);
#   2. builds the engine and seeds the registry with a small base image built by the engine itself;
#   3. creates a supplier repository (VCS A) with prebuilt binaries, docs/, delivery.yaml,
#      SHA256SUMS and an SSH-signed annotated tag (key generated on the spot and put on the
#      pipeline's allow-list);
#   4. runs the engine once for that pipeline and prints every stage, the pushed image and the
#      ledger entries; then checks the image with skopeo, a client nobody on the team wrote;
#   5. takes the delivery through its stages: Vorprüfung automatically, Abnahme and Schulung by a
#      named Verfahrensverantwortliche's Freigabe, Produktion by two (one signed with her own SSH
#      key), printing the board and the full audit trace from the supplier's signature to Produktion;
#   6. deploys into every stage from the delivery's deployment section: Vorprüfung is a Docker stage
#      (the app, a mocked register and the supplier's acceptance test on the local dockerd), the
#      other stages are GitOps stages (signed commits of the rendered, digest-pinned manifests in an
#      environment repository in VCS B; Produktion is verified by an HTTP probe of a tiny local
#      endpoint standing in for the rolled-out application), checked with git verify-commit and
#      kubectl kustomize;
#   7. two tenants: the application above belongs to tenant land-a (Schutzbedarf normal, the shared
#      stage environments); a second supplier delivers a sehr-hoch application of tenant land-b,
#      which passes its intake and its Vorprüfung in an environment dedicated to land-b, and whose
#      promotion into the shared Abnahme is refused with TENANT-NOT-DEDICATED. The demo fails
#      (exit 1) if that refusal does not happen.
# Each run uses fresh repositories under .state/demo/<run id>; the ledger (its own database,
# pipeline_demo, next to the key and checkpoints under .state/demo) keeps every run.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Starting local services (with dockerd: the Vorprüfung is a Docker stage)"
scripts/services.sh start --docker
export PIPELINE_STATE_DIR=${PIPELINE_STATE_DIR:-$REPO_ROOT/.state}
set -a
# shellcheck disable=SC1091
. "$PIPELINE_STATE_DIR/services.env"
set +a

# The demo's own database: its ledger belongs with the signing key and checkpoints under
# $PIPELINE_STATE_DIR/demo (remove both to start the demo from scratch).
DEMO_DB=pipeline_demo
DEMO_PG_CONN=$(printf '%s' "$PIPELINE_PG_CONN" | sed 's/Database=[^;]*/Database='"$DEMO_DB"'/')
PSQL=/usr/lib/postgresql/15/bin/psql  # the client of the server scripts/services.sh runs
[[ -x $PSQL ]] || PSQL=psql
if [[ -z $("$PSQL" -h 127.0.0.1 -p "$PIPELINE_PG_PORT" -U postgres -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$DEMO_DB'") ]]; then
  "$PSQL" -q -h 127.0.0.1 -p "$PIPELINE_PG_PORT" -U postgres -d postgres -c "CREATE DATABASE $DEMO_DB"
fi

say "Building the engine"
ENGINE_DIR=$PIPELINE_STATE_DIR/engine-bin
dotnet build Pipeline.Engine/Pipeline.Engine.csproj -c Release -o "$ENGINE_DIR" -nologo -v quiet -clp:NoSummary
PIPELINE=$ENGINE_DIR/pipeline

RUN_ID=$(date -u +%Y%m%d%H%M%S)
# One pipeline per demo run: the ledger keeps every run, and a tag name must never be reused.
NAME=demo-$RUN_ID
# The second tenant's application (Schutzbedarf sehr-hoch), from a second supplier.
NAME_B=demo-b-$RUN_ID
DEMO=$PIPELINE_STATE_DIR/demo/$RUN_ID
mkdir -p "$DEMO"/{keys,pipelines,supplier,rootfs/bin,secrets}
GIT_PASSWORD=$(cat "$PIPELINE_GIT_PASSWORD_FILE")
printf '%s:%s\n' "$PIPELINE_GIT_USER" "$GIT_PASSWORD" >"$DEMO/secrets/git.cred"
chmod 600 "$DEMO/secrets/git.cred"

# The environment repository (VCS B) the GitOps stages commit to, the key that signs those commits
# (and the allowed-signers file git verify-commit checks them with).
ENV_REPO=environments/demo-$RUN_ID
git init -q --bare --initial-branch=main "$PIPELINE_GIT_ROOT/internal/$ENV_REPO.git"
ssh-keygen -q -t ed25519 -N '' -C deploy@operator.example -f "$DEMO/keys/deploy"
echo "deploy@operator.example namespaces=\"git\" $(cat "$DEMO/keys/deploy.pub")" >"$DEMO/keys/allowed_signers"

# A tiny HTTP endpoint standing in for the application Argo CD / Flux rolled out in Produktion:
# it serves the version the Produktion probe expects (port 0: the OS picks a free one).
mkdir -p "$DEMO/produktion-app"
echo "demo-fachverfahren v1.0.0" >"$DEMO/produktion-app/version"
python3 - "$DEMO/produktion-app" "$DEMO/produktion-app.port" <<'PY' >/dev/null 2>&1 &
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.HTTPServer(("127.0.0.1", 0), handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os; os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()
PY
PROBE_PID=$!
trap 'kill "$PROBE_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [[ -s $DEMO/produktion-app.port ]] && break; sleep 0.1; done
PROBE_URL=http://127.0.0.1:$(cat "$DEMO/produktion-app.port")/version
echo "Produktion probe endpoint: $PROBE_URL"

# The engine's attestation/checkpoint signing key (ECDSA P-256), kept across demo runs so that
# the one shared ledger is signed by one key.
ENGINE_KEY=$PIPELINE_STATE_DIR/demo/engine-attestation.pem
if [[ ! -f $ENGINE_KEY ]]; then
  (umask 077 && openssl ecparam -name prime256v1 -genkey -noout -out "$ENGINE_KEY")
fi
openssl ec -in "$ENGINE_KEY" -pubout -out "$PIPELINE_STATE_DIR/demo/engine-attestation.pub.pem" 2>/dev/null

cat >"$DEMO/engine.yaml" <<YAML
pipelines: pipelines
workDir: work
database:
  connectionString: "$DEMO_PG_CONN"
clamd:
  endpoints: [tcp://$PIPELINE_CLAMD_TCP]
  parallelism: 2
  configFile: ${PIPELINE_CLAMD_CONFIG:-$PIPELINE_STATE_DIR/clamd/clamd.conf}
registry:
  url: http://$PIPELINE_REGISTRY
internalGit:
  url: $PIPELINE_GIT_HTTP/internal
  credentialsFile: secrets/git.cred
attestation:
  signingKeyFile: $ENGINE_KEY
ledger:
  checkpointDir: $PIPELINE_STATE_DIR/demo/checkpoints
  origin: pipeline.example/demo-ledger
people:
  file: people.yaml
stages:
  - name: Vorprüfung
    approval: { automatic: true }
    environment:
      kind: docker
      endpoint: $PIPELINE_DOCKER_HOST
      network: vorpruefung
      memory: 128MiB
      cpus: "0.5"
      user: "10001:10001"
      healthTimeout: 30s
      testTimeout: 2m
      hosts: { maxSchutzbedarf: normal, dedicatedTo: shared }
  - name: Abnahme
    approval: { validFor: 72h }
    environment:
      kind: gitops
      repository: $PIPELINE_GIT_HTTP/internal/$ENV_REPO.git
      credentialsFile: secrets/git.cred
      path: abnahme/hello
      namespace: fv-abnahme
      signingKey: keys/deploy
      committer: { name: Pipeline Deploy, email: deploy@operator.example }
      parameters: { replicas: "1" }
      hosts: { maxSchutzbedarf: normal, dedicatedTo: shared }
  - name: Schulung
    environment:
      kind: gitops
      repository: $PIPELINE_GIT_HTTP/internal/$ENV_REPO.git
      credentialsFile: secrets/git.cred
      path: schulung/hello
      namespace: fv-schulung
      signingKey: keys/deploy
      committer: { name: Pipeline Deploy, email: deploy@operator.example }
      hosts: { maxSchutzbedarf: normal, dedicatedTo: shared }
  - name: Produktion
    approval: { approvers: 2, validFor: 72h }
    environment:
      kind: gitops
      repository: $PIPELINE_GIT_HTTP/internal/$ENV_REPO.git
      credentialsFile: secrets/git.cred
      path: produktion/hello
      namespace: fv-produktion
      signingKey: keys/deploy
      committer: { name: Pipeline Deploy, email: deploy@operator.example }
      parameters: { replicas: "3" }
      probe: { url: "$PROBE_URL", expectStatus: 200, expectVersion: "{tag}", timeout: 30s, interval: 1s }
      hosts: { maxSchutzbedarf: normal, dedicatedTo: shared }
# Two tenants (Mandanten) of the operator. The stage environments above are shared and host up to
# Schutzbedarf normal; land-b's sehr-hoch application has its own Vorprüfung, dedicated to land-b
# (see its pipeline file).
tenants:
  - id: land-a
    name: Landesamt A
    pipelines: [$NAME]
  - id: land-b
    name: Landesamt B
    pipelines: [$NAME_B]
YAML

# The people who act on deliveries: a Systempfleger and two Verfahrensverantwortliche, each with
# a personal token (only its SHA-256 is in the file); Anna also has her own SSH key for signed Freigaben.
# All three are operator staff for both tenants (tenants: ["*"]); a tenant's own people name it instead.
ssh-keygen -q -t ed25519 -N "" -C anna@operator.example -f "$DEMO/keys/anna"
for who in sam anna ben; do
  (umask 077 && openssl rand -hex 24 >"$DEMO/secrets/$who.token")
done
hash() { tr -d '\n' <"$DEMO/secrets/$1.token" | sha256sum | cut -d' ' -f1; }
cat >"$DEMO/people.yaml" <<YAML
people:
  - name: Sam Pfleger
    roles: [systempfleger]
    tenants: ["*"]
    pipelines: ["*"]
    tokenSha256: $(hash sam)
  - name: Anna Beispiel
    roles: [verfahrensverantwortlich]
    tenants: ["*"]
    pipelines: ["*"]
    tokenSha256: $(hash anna)
    sshKey: $(cat "$DEMO/keys/anna.pub")
  - name: Ben Berger
    roles: [verfahrensverantwortlich]
    tenants: ["*"]
    pipelines: ["*"]
    tokenSha256: $(hash ben)
YAML

say "Seeding the registry with a base image built by the engine (busybox, no Docker)"
cp /bin/busybox "$DEMO/rootfs/bin/busybox"
cp /bin/busybox "$DEMO/rootfs/bin/sh"
BASE=$("$PIPELINE" --config "$DEMO/engine.yaml" base-image --rootfs "$DEMO/rootfs" --repository base/busybox --tag demo)
echo "base image: $PIPELINE_REGISTRY/$BASE"

say "Creating the supplier repository with a signed release tag"
ssh-keygen -q -t ed25519 -N '' -C "release@supplier.example" -f "$DEMO/keys/release"
git init -q --bare "$PIPELINE_GIT_ROOT/supplier/demo-app-$RUN_ID.git"
git init -q --bare "$PIPELINE_GIT_ROOT/internal/demo/demo-app-$RUN_ID.git"
W=$DEMO/supplier
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
git -C "$W" init -q -b main
git -C "$W" config user.name "Supplier Release"
git -C "$W" config user.email release@supplier.example
mkdir -p "$W/bin" "$W/docs" "$W/www" "$W/tests/data/register/person" "$W/deploy/k8s"
cat >"$W/bin/hello" <<'SH'
#!/bin/sh
# Demo-Fachverfahren: serves its version over HTTP on port 8080.
exec /bin/busybox httpd -f -p 8080 -h /opt/hello/www
SH
chmod 755 "$W/bin/hello"
echo "demo-fachverfahren v1.0.0" >"$W/www/version"
# The acceptance test (run in the Vorprüfung against the app and a mocked register, with test data).
cat >"$W/tests/acceptance.sh" <<'SH'
#!/bin/sh
get() { for _ in 1 2 3 4 5 6 7 8 9 10; do /bin/busybox wget -q -O - "$1" && return 0; /bin/busybox sleep 0.5; done; return 1; }
v=$(get http://app:8080/version) || { echo "FAIL: the app does not answer"; exit 1; }
echo "app: $v"
case "$v" in *v1.0.0*) ;; *) echo "FAIL: expected v1.0.0"; exit 1;; esac
p=$(get http://register:9090/person/4711) || { echo "FAIL: the register mock does not answer"; exit 1; }
[ "$p" = "$(/bin/busybox cat /testdata/expected-person.txt)" ] || { echo "FAIL: register answered '$p'"; exit 1; }
echo "PASS: version and register lookup"
SH
chmod 755 "$W/tests/acceptance.sh"
echo "Erika Mustermann" >"$W/tests/data/register/person/4711"
echo "Erika Mustermann" >"$W/tests/data/expected-person.txt"
cat >"$W/deploy/k8s/deployment.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  labels: {app: hello}
spec:
  replicas: 2
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: hello
          image: hello
          ports:
            - containerPort: 8080
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: [ALL]
YAML
cat >"$W/deploy/k8s/service.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: hello
spec:
  selector: {app: hello}
  ports:
    - port: 80
      targetPort: 8080
YAML
printf '# Demo-Fachverfahren\n\nRelease 1.0.0: prebuilt binaries for the operator.\n' >"$W/docs/README.md"
cat >"$W/delivery.yaml" <<YAML
version: 1
images:
  - name: hello
    base: $BASE
    files:
      - from: bin
        to: /opt/hello
        mode: "0755"
      - from: www
        to: /opt/hello/www
      - from: tests/acceptance.sh
        to: /opt/hello/tests/acceptance.sh
        mode: "0755"
    entrypoint: [/opt/hello/hello]
    workingDir: /opt/hello
    user: "10001:10001"
    env:
      LANG: C.UTF-8
    ports: [8080]
deployment:
  manifests: deploy/k8s
  parameters:
    - name: replicas
      kind: replicas
      default: "2"
      targets:
        - {kind: Deployment, name: hello, path: spec.replicas}
  acceptanceTests:
    image: hello
    command: [/bin/sh, /opt/hello/tests/acceptance.sh]
    testData: tests/data
    mocks:
      - name: register
        image: hello
        command: [/bin/busybox, httpd, -f, -p, "9090", -h, /testdata/register]
        healthcheck: [/bin/sh, -c, "/bin/busybox wget -q -O /dev/null http://127.0.0.1:9090/person/4711"]
        port: 9090
    timeout: 2m
YAML
(cd "$W" && find . -type f ! -path './.git/*' ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
git -C "$W" add -A
git -C "$W" commit -q -m "Release 1.0.0"
git -C "$W" -c gpg.format=ssh -c user.signingkey="$DEMO/keys/release.pub" tag -s v1.0.0 -m "Release 1.0.0"
git -C "$W" -c http.extraHeader="Authorization: Basic $(printf '%s:%s' "$PIPELINE_GIT_USER" "$GIT_PASSWORD" | base64 -w0)" \
  push -q "$PIPELINE_GIT_HTTP/supplier/demo-app-$RUN_ID.git" main v1.0.0
echo "supplier repository: $PIPELINE_GIT_HTTP/supplier/demo-app-$RUN_ID.git (tag v1.0.0, signed by $(ssh-keygen -lf "$DEMO/keys/release.pub" | cut -d' ' -f2))"

cat >"$DEMO/pipelines/$NAME.yaml" <<YAML
name: $NAME
supplier: Demo Supplier GmbH
schedule: "0 0/5 * * * ?"
schutzbedarf: normal
source:
  url: $PIPELINE_GIT_HTTP/supplier/demo-app-$RUN_ID.git
  credentialsFile: ../secrets/git.cred
  tagPattern: '^v\d+\.\d+\.\d+$'
signers:
  - name: Demo Release Key
    organisation: Demo Supplier GmbH
    sshKey: $(cat "$DEMO/keys/release.pub")
    validFrom: 2020-01-01
checksums:
  manifest: SHA256SUMS
publish:
  repository: demo/demo-app-$RUN_ID
images:
  repositoryPrefix: apps/demo-$RUN_ID
  allowedBaseImages:
    - $BASE
YAML

say "Second tenant: a supplier repository of land-b's sehr-hoch application (signed by another supplier)"
# The same kind of delivery (the files of the first one, its own version text and docs), from a
# second supplier with its own release key, for tenant land-b.
ssh-keygen -q -t ed25519 -N '' -C "release@beispiel-software.example" -f "$DEMO/keys/release-b"
git init -q --bare "$PIPELINE_GIT_ROOT/supplier/demo-b-app-$RUN_ID.git"
git init -q --bare "$PIPELINE_GIT_ROOT/internal/demo/demo-b-app-$RUN_ID.git"
WB=$DEMO/supplier-b
mkdir -p "$WB"
tar -C "$W" --exclude=./.git -cf - . | tar -C "$WB" -xf -
git -C "$WB" init -q -b main
git -C "$WB" config user.name "Beispiel Software Release"
git -C "$WB" config user.email release@beispiel-software.example
echo "demo-meldewesen v1.0.0" >"$WB/www/version"
printf '# Demo-Meldewesen (Landesamt B)\n\nRelease 1.0.0: prebuilt binaries for the operator.\n' >"$WB/docs/README.md"
(cd "$WB" && find . -type f ! -path './.git/*' ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
git -C "$WB" add -A
git -C "$WB" commit -q -m "Release 1.0.0"
git -C "$WB" -c gpg.format=ssh -c user.signingkey="$DEMO/keys/release-b.pub" tag -s v1.0.0 -m "Release 1.0.0"
git -C "$WB" -c http.extraHeader="Authorization: Basic $(printf '%s:%s' "$PIPELINE_GIT_USER" "$GIT_PASSWORD" | base64 -w0)" \
  push -q "$PIPELINE_GIT_HTTP/supplier/demo-b-app-$RUN_ID.git" main v1.0.0
echo "supplier repository: $PIPELINE_GIT_HTTP/supplier/demo-b-app-$RUN_ID.git (tag v1.0.0, signed by $(ssh-keygen -lf "$DEMO/keys/release-b.pub" | cut -d' ' -f2))"

# land-b's pipeline: Schutzbedarf sehr-hoch, and its own stages: a Vorprüfung dedicated to land-b
# (here on the same local dockerd, in its own network), then the SHARED Abnahme land-a uses. The
# engine decides in code that a sehr-hoch application never enters a shared environment, whatever
# the pipeline's stage list says.
cat >"$DEMO/pipelines/$NAME_B.yaml" <<YAML
name: $NAME_B
supplier: Beispiel Software AG
schedule: "0 0/5 * * * ?"
schutzbedarf: sehr-hoch
source:
  url: $PIPELINE_GIT_HTTP/supplier/demo-b-app-$RUN_ID.git
  credentialsFile: ../secrets/git.cred
  tagPattern: '^v\d+\.\d+\.\d+$'
signers:
  - name: Beispiel Release Key
    organisation: Beispiel Software AG
    sshKey: $(cat "$DEMO/keys/release-b.pub")
    validFrom: 2020-01-01
checksums:
  manifest: SHA256SUMS
publish:
  repository: demo/demo-b-app-$RUN_ID
images:
  repositoryPrefix: apps/demo-b-$RUN_ID
  allowedBaseImages:
    - $BASE
stages:
  - name: Vorprüfung
    approval: { automatic: true }
    environment:
      kind: docker
      endpoint: $PIPELINE_DOCKER_HOST
      network: vorpruefung-land-b
      memory: 128MiB
      cpus: "0.5"
      user: "10001:10001"
      healthTimeout: 30s
      testTimeout: 2m
      hosts: { maxSchutzbedarf: sehr-hoch, dedicatedTo: land-b }
  - name: Abnahme
    approval: { validFor: 72h }
    environment:
      kind: gitops
      repository: $PIPELINE_GIT_HTTP/internal/$ENV_REPO.git
      credentialsFile: $DEMO/secrets/git.cred
      path: abnahme/meldewesen
      namespace: fv-abnahme
      signingKey: $DEMO/keys/deploy
      committer: { name: Pipeline Deploy, email: deploy@operator.example }
      hosts: { maxSchutzbedarf: normal, dedicatedTo: shared }
YAML

say "Configuration check: two tenants, two pipelines, every environment declares what it hosts"
"$PIPELINE" --config "$DEMO/engine.yaml" check

say "Running the engine once for pipeline $NAME"
set +e
"$PIPELINE" --config "$DEMO/engine.yaml" run "$NAME" | tee "$DEMO/run.txt"
rc=${PIPESTATUS[0]}
set -e
[[ $rc -eq 0 ]] || { echo "demo: the engine did not accept the delivery (exit $rc)" >&2; exit "$rc"; }

IMAGE=$(sed -n 's/^image: //p' "$DEMO/run.txt" | head -n1)
say "Independent check: skopeo inspect docker://$IMAGE"
skopeo inspect --tls-verify=false "docker://$IMAGE" | jq '{Digest, Labels, Layers}'
say "Ledger chain"
"$PIPELINE" --config "$DEMO/engine.yaml" ledger --verify
echo
echo "image: $IMAGE"
say "Signed ledger checkpoint ($PIPELINE_STATE_DIR/demo/checkpoints/latest.note)"
cat "$PIPELINE_STATE_DIR/demo/checkpoints/latest.note"
say "Audit trace of the pushed image (signed attestations, inclusion proofs, stage links)"
"$PIPELINE" --config "$DEMO/engine.yaml" audit trace "$IMAGE"

ID=$(sed -n 's/^delivery \([0-9a-f-]*\) tag v1.0.0: ACCEPTED.*/\1/p' "$DEMO/run.txt" | head -n1)
P() { "$PIPELINE" --config "$DEMO/engine.yaml" "$@"; }
say "The board after acceptance: Vorprüfung is automatic and a Docker stage (app, register mock, acceptance test)"
P status --pipeline "$NAME"
P history "$ID" | grep -E "(check|deploy|verification):Vorpr"
say "Abnahme: Sam (Systempfleger) requests it, Anna (Verfahrensverantwortliche) gives the Freigabe"
P promote "$ID" --to Abnahme --token-file "$DEMO/secrets/sam.token"
P status --pipeline "$NAME"
P approve "$ID" --stage Abnahme --comment "Abnahmetest bestanden" --token-file "$DEMO/secrets/anna.token"
say "Schulung: requested by Anna, approved by Ben (Anna cannot approve her own request)"
P promote "$ID" --to Schulung --token-file "$DEMO/secrets/anna.token"
set +e
P approve "$ID" --stage Schulung --token-file "$DEMO/secrets/anna.token"
set -e
P approve "$ID" --stage Schulung --comment "Schulungsumgebung ok" --token-file "$DEMO/secrets/ben.token"
say "Produktion: two Freigaben; Anna signs hers with her own SSH key"
P promote "$ID" --to Produktion --token-file "$DEMO/secrets/sam.token"
P approval-statement "$ID" --stage Produktion --comment "Produktion freigegeben" --token-file "$DEMO/secrets/anna.token"
echo
P approve "$ID" --stage Produktion --comment "Produktion freigegeben" --sign-with "$DEMO/keys/anna" --token-file "$DEMO/secrets/anna.token"
P approve "$ID" --stage Produktion --comment "Betriebsfreigabe erteilt" --token-file "$DEMO/secrets/ben.token"
say "The board"
P status --pipeline "$NAME"
say "Environment repository (VCS B): one signed commit per GitOps stage, checked by git itself"
ENV_CLONE=$DEMO/environment
git clone -q -c http.extraHeader="Authorization: Basic $(printf '%s:%s' "$PIPELINE_GIT_USER" "$GIT_PASSWORD" | base64 -w0)" \
  "$PIPELINE_GIT_HTTP/internal/$ENV_REPO.git" "$ENV_CLONE"
git -C "$ENV_CLONE" -c gpg.ssh.allowedSignersFile="$DEMO/keys/allowed_signers" log --format='%h %G? %s' | cat
for c in $(git -C "$ENV_CLONE" rev-list HEAD); do
  git -C "$ENV_CLONE" -c gpg.ssh.allowedSignersFile="$DEMO/keys/allowed_signers" verify-commit "$c"
done
say "kubectl kustomize produktion/hello (what Argo CD / Flux applies in Produktion)"
kubectl kustomize "$ENV_CLONE/produktion/hello"
PROD="$PIPELINE_REGISTRY/produktion/apps/demo-$RUN_ID/hello:produktion"
say "Independent check: skopeo inspect docker://$PROD (the digest pushed by the intake)"
skopeo inspect --tls-verify=false "docker://$PROD" | jq '{Digest}'
echo "pushed: $IMAGE"
say "History of delivery $ID"
P history "$ID"
say "Audit trace: supplier signature → checks → build → push → every promotion → every Freigabe"
P audit trace "$ID"

say "Tenant land-b: running the engine once for pipeline $NAME_B (Schutzbedarf sehr-hoch)"
set +e
"$PIPELINE" --config "$DEMO/engine.yaml" run "$NAME_B" | tee "$DEMO/run-b.txt"
rc=${PIPESTATUS[0]}
set -e
[[ $rc -eq 0 ]] || { echo "demo: the engine did not accept land-b's delivery (exit $rc)" >&2; exit "$rc"; }
ID_B=$(sed -n 's/^delivery \([0-9a-f-]*\) tag v1.0.0: ACCEPTED.*/\1/p' "$DEMO/run-b.txt" | head -n1)
[[ -n $ID_B ]] || { echo "demo: land-b's delivery was not accepted" >&2; exit 1; }
say "land-b's Vorprüfung ran in the Docker environment dedicated to land-b (the placement is in the signed check statement)"
P status --pipeline "$NAME_B"
P history "$ID_B" | grep -E "(check|deploy|verification):Vorpr"
state_b() { P status --pipeline "$NAME_B" --json | jq -r --arg id "$ID_B" '.pipelines[].deliveries[].delivery | select(.deliveryId == $id) | "\(.stage) \(.result.result)"'; }
[[ $(state_b) == "Vorprüfung verified" ]] || { echo "demo: FAILED: land-b's delivery is '$(state_b)', not verified in its dedicated Vorprüfung" >&2; exit 1; }

say "land-b asks for the SHARED Abnahme (shared, up to normal): the engine must refuse"
set +e
P promote "$ID_B" --to Abnahme --token-file "$DEMO/secrets/sam.token" >"$DEMO/refusal.txt" 2>&1
rc=$?
set -e
cat "$DEMO/refusal.txt"
REFUSED=$(grep -m1 'TENANT-NOT-DEDICATED' "$DEMO/refusal.txt" || true)
if [[ $rc -eq 0 || -z $REFUSED ]]; then
  echo "demo: FAILED: the promotion of land-b's sehr-hoch application into the shared Abnahme was not refused with TENANT-NOT-DEDICATED (exit $rc)" >&2
  exit 1
fi
echo "refused (exit $rc), code TENANT-NOT-DEDICATED, rule: sehr hoch only into environments dedicated to the application's own tenant"

say "Nothing of land-b reached the shared Abnahme (board, ledger, registry, environment repository)"
P status --pipeline "$NAME_B"
[[ $(state_b) == "Vorprüfung verified" ]] || { echo "demo: FAILED: the refused request changed land-b's delivery to '$(state_b)'" >&2; exit 1; }
if P history "$ID_B" | grep -E ':Abnahme' >/dev/null; then
  echo "demo: FAILED: the ledger records a step into Abnahme for land-b's delivery" >&2
  exit 1
fi
echo "ledger: no request, promotion or deployment of delivery $ID_B into Abnahme"
if skopeo inspect --raw --tls-verify=false "docker://$PIPELINE_REGISTRY/abnahme/apps/demo-b-$RUN_ID/hello:abnahme" >/dev/null 2>&1; then
  echo "demo: FAILED: land-b's image was copied into the shared Abnahme's registry repository" >&2
  exit 1
fi
echo "registry: no abnahme/apps/demo-b-$RUN_ID/hello (skopeo finds nothing)"
git -C "$ENV_CLONE" fetch -q origin && git -C "$ENV_CLONE" merge -q --ff-only FETCH_HEAD
if [[ -e $ENV_CLONE/abnahme/meldewesen ]]; then
  echo "demo: FAILED: land-b's manifests were written into the shared environment repository" >&2
  exit 1
fi
echo "environment repository: abnahme/ holds $(ls "$ENV_CLONE/abnahme" | tr '\n' ' ')(land-a only)"

say "The placement decisions in the signed check statements (from bundles written by 'pipeline audit export')"
# Each check statement names the tenant, the Schutzbedarf, the environment and the rule that allowed it.
placements() {
  P audit export "$1" -o "$2" >/dev/null 2>>"$DEMO/audit-export.log"
  P audit verify-bundle "$2" --key "$PIPELINE_STATE_DIR/demo/engine-attestation.pub.pem" >/dev/null
  jq -r '.entries[].envelope' "$2" | while read -r envelope; do
    printf '%s' "$envelope" | base64 -d | jq -r '.payload' | base64 -d \
      | jq -r 'select(.predicate.evidence["placement.rule"]?) | .predicate as $p | $p.evidence
               | "\($p.stage | sub("^check:"; ""))\t\(.["placement.tenant"])\t\(.["placement.schutzbedarf"])\t\(.["placement.decision"])\t\(.["placement.rule"])\t\(.["placement.environment"])"'
  done
}
{
  printf 'stage\ttenant\tSchutzbedarf\tdecision\trule\tenvironment\n'
  placements "$IMAGE" "$DEMO/bundle-a.json"
  IMAGE_B=$(sed -n 's/^image: //p' "$DEMO/run-b.txt" | head -n1)
  placements "$IMAGE_B" "$DEMO/bundle-b.json"
} | tee "$DEMO/placements.tsv" | column -t -s $'\t'
expected=$'Vorprüfung\tland-a\tnormal\tallowed\tshared-up-to-level\nAbnahme\tland-a\tnormal\tallowed\tshared-up-to-level\nSchulung\tland-a\tnormal\tallowed\tshared-up-to-level\nProduktion\tland-a\tnormal\tallowed\tshared-up-to-level\nVorprüfung\tland-b\tsehr-hoch\tallowed\tdedicated-to-tenant'
if [[ $(tail -n +2 "$DEMO/placements.tsv" | cut -f1-5) != "$expected" ]]; then
  echo "demo: FAILED: the signed check statements do not carry the expected placement decisions" >&2
  exit 1
fi

say "Metering: this month's report per tenant and application ('pipeline report', read-only)"
P report --month "$(date -u +%Y-%m)" --format json --out "$DEMO/metering.json" 2>>"$DEMO/report.log"
P report --month "$(date -u +%Y-%m)" --format csv --out "$DEMO/metering.csv" 2>>"$DEMO/report.log"
jq -r --arg a "$NAME" --arg b "$NAME_B" '.rows[] | select(.pipeline == $a or .pipeline == $b)
  | "\(.tenant)\t\(.pipeline)\t\(.deliveries.accepted)\t\(.scan.bytes)\t\(.promotions.total)\t\(.storage.bytes)\t\(.toFinalStage.deliveries)"' "$DEMO/metering.json" \
  | { printf 'tenant\tapplication\taccepted\tbytes scanned\tpromotions\tstorage bytes\treached last stage\n'; cat; } | tee "$DEMO/metering.tsv" | column -t -s $'\t'
echo "(the whole report: $DEMO/metering.csv and $DEMO/metering.json)"
# land-a's application: accepted once, promoted into all four stages, reached Produktion; land-b's: accepted, only Vorprüfung.
if ! grep -qP "^land-a\t$NAME\t1\t[1-9][0-9]*\t4\t[1-9][0-9]*\t1$" "$DEMO/metering.tsv" \
   || ! grep -qP "^land-b\t$NAME_B\t1\t[1-9][0-9]*\t1\t[1-9][0-9]*\t0$" "$DEMO/metering.tsv"; then
  echo "demo: FAILED: the metering report does not show what the demo did (see $DEMO/metering.json)" >&2
  exit 1
fi

say "Two tenants, two Schutzbedarf levels"
echo "land-a (Landesamt A)  $NAME    normal     shared Vorprüfung, Abnahme, Schulung, Produktion: in Produktion"
echo "land-b (Landesamt B)  $NAME_B  sehr-hoch  Vorprüfung dedicated to land-b: verified; shared Abnahme: refused"
echo "$REFUSED"
echo
echo "image: $IMAGE"
