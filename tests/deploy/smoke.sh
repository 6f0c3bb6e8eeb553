#!/usr/bin/env bash
# A real deployment on this machine, end to end (opt-in, not in CI: it needs root and minutes).
#
#   sudo tests/deploy/smoke.sh
#
# 1. starts a Docker daemon of its own (its own data, exec root and socket under a temporary
#    folder; no bridge, no iptables: the services use the host network) and a one-node swarm
#    on 127.0.0.1;
# 2. makes a Debian 12 base image with debootstrap (no registry is reachable here; cached in
#    ~/.cache/learning-orchestra) and, through `./run.sh deploy`, builds the core image on it,
#    creates the secrets and deploys tests/deploy/smoke-stack.yml: dataset, transform and
#    observe, each its own service, on one shared volume with the SQLite store;
# 3. runs dataset -> projection -> observe against each service's port, with the API token
#    deploy made (a Docker secret the services read from a file), and checks the services'
#    health, user and secrets;
# 4. removes everything it made (stack, volumes, secrets, swarm, daemon, folder), also when a
#    step fails. Its output is pasted in docs/deploy.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

[ "$(id -u)" = 0 ] || {
    echo "smoke: run as root (it starts a Docker daemon)" >&2
    exit 1
}
for tool in dockerd debootstrap curl; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "smoke: needs $tool: apt-get install docker.io debootstrap curl" >&2
        exit 1
    }
done

STACK=lo-smoke
API=/api/learningOrchestra/v1
DATASET=http://127.0.0.1:18081$API
TRANSFORM=http://127.0.0.1:18082$API
OBSERVE=http://127.0.0.1:18083$API
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/learning-orchestra
BASE_TAR=$CACHE/smoke-base-bookworm.tar
WORK=$(mktemp -d /tmp/lo-smoke.XXXXXX)
export DOCKER_HOST=unix://$WORK/docker.sock
STARTED=$SECONDS

step() { printf '[%4ss] %s\n' "$((SECONDS - STARTED))" "$*"; }
fail() {
    echo "smoke: FAILED: $*" >&2
    exit 1
}

cleanup() {
    local status=$?
    set +e
    if [ -S "$WORK/docker.sock" ]; then
        step "cleanup: removing the stack, its volumes and secrets, the swarm and the daemon"
        ./run.sh remove --stack "$STACK" --volumes --secrets >/dev/null 2>&1
        docker swarm leave --force >/dev/null 2>&1
    fi
    if [ -f "$WORK/docker.pid" ]; then
        kill "$(cat "$WORK/docker.pid")" 2>/dev/null
        for _ in $(seq 30); do
            [ -f "$WORK/docker.pid" ] || break
            sleep 1
        done
    fi
    # what the daemon left mounted under its roots, innermost first
    grep -o " $WORK/[^ ]*" /proc/mounts | sort -r | xargs -r umount -l 2>/dev/null
    rm -rf "$WORK"
    if [ "$status" = 0 ]; then
        step "smoke test passed"
    else
        step "smoke test failed (exit $status)"
    fi
}
trap cleanup EXIT

step "starting dockerd (data and socket in $WORK)"
dockerd --iptables=false --bridge=none --ip-forward=false --data-root "$WORK/data" \
    --exec-root "$WORK/exec" --pidfile "$WORK/docker.pid" -H "$DOCKER_HOST" \
    >"$WORK/dockerd.log" 2>&1 &
for _ in $(seq 30); do
    docker info >/dev/null 2>&1 && break
    sleep 1
done
docker info >/dev/null 2>&1 || fail "dockerd did not start: $(tail -5 "$WORK/dockerd.log")"
step "dockerd $(docker version --format '{{.Server.Version}}') is up; swarm init"
docker swarm init --advertise-addr 127.0.0.1 >/dev/null

if [ ! -s "$BASE_TAR" ]; then
    step "debootstrap: Debian 12 minbase with python3 and python3-venv"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm \
        "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 ||
        fail "debootstrap: $(tail -5 "$WORK/debootstrap.log")"
    # This machine's own certificate authorities (a network that inspects TLS has one), so
    # that pip in the build trusts what the host trusts.
    cp /usr/local/share/ca-certificates/*.crt "$WORK/rootfs/usr/local/share/ca-certificates/" \
        2>/dev/null || true
    chroot "$WORK/rootfs" update-ca-certificates >/dev/null 2>&1
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$WORK/rootfs/etc/pip.conf"
    mkdir -p "$CACHE"
    tar -C "$WORK/rootfs" -cf "$BASE_TAR.part" . && mv "$BASE_TAR.part" "$BASE_TAR"
    rm -rf "$WORK/rootfs"
fi
docker import "$BASE_TAR" lo-base:bookworm >/dev/null
step "base image lo-base:bookworm imported ($(du -h "$BASE_TAR" | cut -f1) tar)"

step "./run.sh deploy: build the core image, create the secrets, deploy, wait until healthy"
./run.sh deploy --stack "$STACK" --file tests/deploy/smoke-stack.yml --images core \
    --base-image lo-base:bookworm --tag smoke --timeout 300 >"$WORK/deploy.out" 2>"$WORK/deploy.log" ||
    fail "deploy: $(tail -20 "$WORK/deploy.log")"
grep '^deploy: \(building\|created\|deploying\|every\)' "$WORK/deploy.log" | sed 's/^/    /'
TOKEN=$(tail -1 "$WORK/deploy.out")
[ -n "$TOKEN" ] || fail "deploy printed no API token"
step "image: $(docker image inspect learning-orchestra/core:smoke --format '{{.Size}}' |
    awk '{ printf "%.0f MB", $1 / 1e6 }'), user $(docker image inspect learning-orchestra/core:smoke --format '{{.Config.User}}')"
docker service ls --filter "label=com.docker.stack.namespace=$STACK" \
    --format '{{.Name}} {{.Replicas}} {{.Image}}' | sed 's/^/    /'

# One request: prints the status code, keeps the body in $WORK/body; $1 the expected code.
request() {
    local expected=$1 code
    shift
    code=$(curl -sS -o "$WORK/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$@")
    [ "$code" = "$expected" ] || fail "$* answered $code, not $expected: $(head -c 400 "$WORK/body")"
    echo "$code"
}

step "health of each service, through its own port"
for url in "$DATASET" "$TRANSFORM" "$OBSERVE"; do
    request 200 "${url%"$API"}/health" >/dev/null
    echo "    ${url%"$API"}/health: $(cat "$WORK/body")"
done
for service in lo-dataset lo-transform lo-observe; do
    container=$(docker ps -q --filter "label=com.docker.swarm.service.name=${STACK}_$service")
    echo "    $service: $(docker inspect "$container" --format '{{.State.Health.Status}}'), runs as" \
        "uid $(docker exec "$container" id -u), secret files" \
        "$(docker exec "$container" stat -c '%a %u' /run/secrets/lo_api_tokens)"
done

step "the token is required (read from the secret file): no token -> 401"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$DATASET/dataset/csv")
[ "$code" = 401 ] || fail "a request without the token answered $code, not 401"
echo "    GET dataset/csv without a token: $code"

step "dataset (port 18081): upload the Titanic CSV"
request 201 -F datasetName=titanic -F file=@examples/data/titanic/train.csv \
    "$DATASET/dataset/csv" >/dev/null
echo "    POST dataset/csv: 201 $(cat "$WORK/body")"

step "observe (port 18083): wait for titanic"
request 200 "$OBSERVE/observe/titanic?timeout=120" >/dev/null
grep -q '"finished": *true' "$WORK/body" || fail "titanic did not finish: $(cat "$WORK/body")"
echo "    titanic: finished, $(grep -o '"rows": *[0-9]*' "$WORK/body" | head -1)"

step "transform (port 18082): projection of three columns"
request 201 -X POST "$TRANSFORM/transform/projection" -H 'Content-Type: application/json' \
    -d '{"inputDatasetName": "titanic", "outputDatasetName": "titanic_kept",
         "names": ["Survived", "Pclass", "Sex"]}' >/dev/null
echo "    POST transform/projection: 201 $(cat "$WORK/body")"

step "observe (port 18083): wait for titanic_kept"
request 200 "$OBSERVE/observe/titanic_kept?timeout=120" >/dev/null
grep -q '"finished": *true' "$WORK/body" || fail "titanic_kept did not finish: $(cat "$WORK/body")"
echo "    titanic_kept: finished"

step "transform (port 18082): read the projection's rows"
check_projection() {
    request 200 "$TRANSFORM/transform/projection/titanic_kept?limit=2" >/dev/null
    grep -q '"fields": *\["Survived", *"Pclass", *"Sex"\]' "$WORK/body" ||
        fail "unexpected projection: $(head -c 600 "$WORK/body")"
    grep -q '"rows": *891' "$WORK/body" || fail "the projection has not 891 rows"
    echo "    $(grep -o '"rows": *891' "$WORK/body" | head -1), fields Survived Pclass Sex;" \
        "first row: $(grep -o '{"Survived":[0-9][^}]*}' "$WORK/body" | paste -sd' ' -)"
}
check_projection

step "a bad request gets a 4xx naming the field: projection of a missing column"
request 422 -X POST "$TRANSFORM/transform/projection" -H 'Content-Type: application/json' \
    -d '{"inputDatasetName": "titanic", "outputDatasetName": "bad", "names": ["Gender"]}' \
    >/dev/null
echo "    $(head -c 160 "$WORK/body")..."

step "a rolling restart of transform (docker service update --force): nothing lost"
docker service update --force --detach=false --quiet "${STACK}_lo-transform" >/dev/null
for _ in $(seq 60); do
    curl -fsS -o /dev/null "${TRANSFORM%"$API"}/health" 2>/dev/null && break
    sleep 1
done
echo "    new task: $(docker service ps "${STACK}_lo-transform" --filter desired-state=running \
    --format '{{.Name}} {{.CurrentState}}')"
check_projection
