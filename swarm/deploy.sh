#!/usr/bin/env bash
# ./run.sh deploy and ./run.sh remove: Learning Orchestra on a Docker Swarm (docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=learning-orchestra
STACK_FILES=(swarm/stack.yml) # --file replaces it, a second --file adds to it
FILES_GIVEN=0
TAG=
PORT=8080
PUBLIC_URL=
REGISTRY=
NFS=
BASE_IMAGE=
BUILD=1
TIMEOUT=900
IMAGES=
NODES=1 # the swarm's nodes, counted once deploy has checked there is a swarm
LOCAL_REGISTRY=127.0.0.1:5000
REGISTRY_SERVICE=lo-registry

deploy_usage() {
    cat <<'EOF'
usage: ./run.sh deploy [OPTIONS]

Builds the images, creates the secrets that are missing, deploys swarm/stack.yml to the
Docker Swarm this node manages, waits until every service is healthy and prints the
gateway's URL. Run it again to upgrade (a rolling update; a failing one rolls back).

options:
  --stack NAME         the stack's name (default: learning-orchestra)
  --tag TAG            the images' tag (default: the git commit, "-dirty" if changed)
  --port PORT          the gateway's published port on every node (default: 8080)
  --public-url URL     the origin browsers reach the gateway at, for CORS
                       (default: http://ADDRESS:PORT, ADDRESS this node's swarm address)
  --registry HOST:PORT push the images there, so that every node can pull them (default:
                       none on a one-node swarm; on several nodes a registry service this
                       script starts, published on 127.0.0.1:5000 of every node)
  --nfs HOST:/PATH     keep the artifact volume on this NFS export (swarm/nfs.yml): the
                       step services may then run on any node. Without it they are pinned
                       to this node (label learning-orchestra.data=true)
  --base-image IMAGE   the images' base (default: python:3.11-slim-bookworm)
  --no-build           do not build (or push): deploy the images already tagged TAG
  --timeout SECONDS    how long to wait for every service to be healthy (default: 900)
  --file FILE          deploy this stack file instead of swarm/stack.yml; given again, the
                       files are merged in order (e.g. swarm/stack.yml, then an override)
  --images LIST        the images to build, comma-separated (default: those FILE uses)
  -h, --help           this help
EOF
}

remove_usage() {
    cat <<'EOF'
usage: ./run.sh remove [OPTIONS]

Removes the stack's services, networks and configs. Its data (the volumes) and secrets are
kept unless asked for, so a later ./run.sh deploy finds everything as it was.

options:
  --stack NAME   the stack's name (default: learning-orchestra)
  --volumes      also remove its volumes on this node: every step's output and MongoDB's
                 data (on other nodes: docker volume rm NAME_lo-data there)
  --secrets      also remove its secrets (the next deploy makes new ones: a new API token)
  -h, --help     this help
EOF
}

say() { echo "deploy: $*" >&2; }
fail() {
    echo "deploy: error: $*" >&2
    exit 1
}

# Each image and how it is built: EXTRAS and JAVA (services/docker/Dockerfile).
image_args() {
    case "$1" in
    core) echo "EXTRAS= JAVA=0" ;;
    ml) echo "EXTRAS=sklearn,tensorflow,autokeras JAVA=0" ;;
    pycaret) echo "EXTRAS=pycaret JAVA=0" ;;
    spark) echo "EXTRAS=spark JAVA=1" ;;
    full) echo "EXTRAS=all JAVA=1" ;;
    *) fail "unknown image '$1': core, ml, pycaret, spark or full" ;;
    esac
}

check_prerequisites() {
    command -v docker >/dev/null 2>&1 ||
        fail "the docker CLI is not installed (https://docs.docker.com/engine/install/)"
    docker info >/dev/null 2>&1 ||
        fail "no Docker daemon answers (is it running, and may this user use it?)"
    local state
    state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')
    case "$state" in
    "active true") ;;
    "active false") fail "this node is a swarm worker: run ./run.sh deploy on a manager" ;;
    *) fail "this node is in no swarm: start one with 'docker swarm init' (docs/deploy.md)" ;;
    esac
    local file
    for file in "${STACK_FILES[@]}"; do
        [ -f "$file" ] || fail "no stack file $file"
    done
}

default_tag() {
    local commit
    commit=$(git rev-parse --short=12 HEAD 2>/dev/null) || {
        echo latest
        return
    }
    if [ -n "$(git status --porcelain -- services client constraints.txt pyproject.toml)" ]; then
        commit="$commit-dirty"
    fi
    echo "$commit"
}

# The images the stack files name: learning-orchestra/NAME.
stack_images() {
    cat "${STACK_FILES[@]}" | grep -o 'learning-orchestra}/[a-z]*' | cut -d/ -f2 | sort -u |
        paste -sd, -
}

build_images() {
    local prefix=$1 image arg args build_args
    for image in ${IMAGES//,/ }; do
        read -ra args <<<"$(image_args "$image")"
        build_args=()
        for arg in "${args[@]}" ${BASE_IMAGE:+"BASE_IMAGE=$BASE_IMAGE"}; do
            build_args+=(--build-arg "$arg")
        done
        say "building $prefix/$image:$TAG (${args[*]})"
        docker build --network host -f services/docker/Dockerfile "${build_args[@]}" \
            -t "$prefix/$image:$TAG" . >&2
        if [ -n "$REGISTRY" ]; then
            docker push "$prefix/$image:$TAG" >&2
        fi
    done
}

# A registry every node pulls from: 127.0.0.1:5000 is published on every node by the
# routing mesh, and Docker trusts a loopback registry without TLS.
ensure_local_registry() {
    if ! docker service inspect "$REGISTRY_SERVICE" >/dev/null 2>&1; then
        say "starting a registry service ($REGISTRY_SERVICE) on port 5000 of every node"
        docker service create --name "$REGISTRY_SERVICE" --publish published=5000,target=5000 \
            --constraint node.role==manager --mount type=volume,src=lo-registry,dst=/var/lib/registry \
            --detach registry:2 >/dev/null
    fi
    local i
    for i in $(seq 60); do
        curl -fsS "http://$LOCAL_REGISTRY/v2/" >/dev/null 2>&1 && return
        [ "$i" = 60 ] && fail "the registry on $LOCAL_REGISTRY did not answer in 60 s"
        sleep 1
    done
}

label_nodes() {
    local self node
    self=$(docker info --format '{{.Swarm.NodeID}}')
    docker node update --label-add learning-orchestra.mongo=true "$self" >/dev/null
    if [ -n "$NFS" ]; then
        for node in $(docker node ls -q); do
            docker node update --label-add learning-orchestra.data=true "$node" >/dev/null
        done
    else
        docker node update --label-add learning-orchestra.data=true "$self" >/dev/null
        if [ "$NODES" -gt 1 ]; then
            say "no --nfs: the step services and Spark workers run on this node only (the" \
                "artifact volume is this node's); see docs/deploy.md 'Several nodes'"
        fi
    fi
}

random_text() { # $1 characters of [A-Za-z0-9] (read in blocks: no SIGPIPE under pipefail)
    local text=
    while [ ${#text} -lt "$1" ]; do
        text+=$(head -c 1024 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')
    done
    printf '%s' "${text:0:$1}"
}

has_secret() { docker secret inspect "$1" >/dev/null 2>&1; }

create_secret() { # name, value (from stdin, never a command line)
    printf '%s' "$2" | docker secret create "$1" - >/dev/null
    say "created secret $1"
}

ensure_secrets() {
    local password token
    if ! has_secret lo_mongo_password; then
        has_secret lo_store_url && fail "secret lo_store_url exists without lo_mongo_password:" \
            "remove it (docker secret rm lo_store_url) so both are made again"
        password=$(random_text 32)
        create_secret lo_mongo_password "$password"
        create_secret lo_store_url \
            "mongodb://lo:$password@lo-mongo:27017/learning_orchestra?replicaSet=rs0&authSource=admin"
    fi
    has_secret lo_store_url || fail "secret lo_mongo_password exists without lo_store_url:" \
        "create it (docs/deploy.md 'Secrets') or remove both"
    has_secret lo_mongo_keyfile || create_secret lo_mongo_keyfile "$(random_text 756)"
    has_secret lo_secret_key || create_secret lo_secret_key "$(random_text 64)"
    if ! has_secret lo_api_tokens; then
        token=$(random_text 40)
        create_secret lo_api_tokens "$token"
        say "the API token (shown once; clients send 'Authorization: Bearer TOKEN'):"
        echo "$token"
    fi
}

# Every service of the stack has all its replicas running (and healthy: Swarm counts a task
# with a health check only once it passes), and a one-shot service's task has completed.
wait_until_healthy() {
    local deadline=$((SECONDS + TIMEOUT)) pending name replicas
    while :; do
        pending=()
        while read -r name replicas; do
            case "$name" in
            *-init)
                docker service ps "$name" --format '{{.CurrentState}}' |
                    grep -q '^Complete' || pending+=("$name (not completed)")
                ;;
            *)
                [ "${replicas%%/*}" = "${replicas##*/}" ] || pending+=("$name $replicas")
                ;;
            esac
        done < <(docker service ls --filter "label=com.docker.stack.namespace=$STACK" \
            --format '{{.Name}} {{.Replicas}}')
        [ ${#pending[@]} -eq 0 ] && return
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "not healthy after ${TIMEOUT} s: ${pending[*]}"
            say "see: docker service ps --no-trunc NAME; docker service logs NAME"
            exit 1
        fi
        say "waiting for ${#pending[@]} service(s): ${pending[*]}"
        sleep 10
    done
}

deploy() {
    while [ $# -gt 0 ]; do
        case "$1" in
        --stack) STACK=${2:?--stack needs a name} && shift ;;
        --tag) TAG=${2:?--tag needs a tag} && shift ;;
        --port) PORT=${2:?--port needs a port} && shift ;;
        --public-url) PUBLIC_URL=${2:?--public-url needs a URL} && shift ;;
        --registry) REGISTRY=${2:?--registry needs HOST:PORT} && shift ;;
        --nfs) NFS=${2:?--nfs needs HOST:/PATH} && shift ;;
        --base-image) BASE_IMAGE=${2:?--base-image needs an image} && shift ;;
        --no-build) BUILD=0 ;;
        --timeout) TIMEOUT=${2:?--timeout needs seconds} && shift ;;
        --file)
            [ "$FILES_GIVEN" = 1 ] || STACK_FILES=()
            STACK_FILES+=("${2:?--file needs a stack file}") && FILES_GIVEN=1 && shift
            ;;
        --images) IMAGES=${2:?--images needs a list} && shift ;;
        -h | --help)
            deploy_usage
            return
            ;;
        *)
            deploy_usage >&2
            fail "unknown option '$1'"
            ;;
        esac
        shift
    done
    case "$NFS" in "" | ?*:/*) ;; *) fail "--nfs takes HOST:/PATH, not '$NFS'" ;; esac
    check_prerequisites
    TAG=${TAG:-$(default_tag)}
    IMAGES=${IMAGES:-$(stack_images)}
    local image
    for image in ${IMAGES//,/ }; do image_args "$image" >/dev/null; done
    NODES=$(docker node ls -q | wc -l)
    if [ -z "$REGISTRY" ] && [ "$NODES" -gt 1 ]; then
        REGISTRY=$LOCAL_REGISTRY
        [ "$BUILD" = 1 ] && ensure_local_registry
    fi
    local prefix=learning-orchestra address file files=()
    for file in "${STACK_FILES[@]}"; do files+=(-c "$file"); done
    [ -n "$REGISTRY" ] && prefix=$REGISTRY/learning-orchestra
    [ "$BUILD" = 1 ] && build_images "$prefix"
    label_nodes
    ensure_secrets
    if [ -n "$NFS" ]; then
        files+=(-c swarm/nfs.yml)
        export LO_NFS_HOST=${NFS%%:*} LO_NFS_PATH=${NFS#*:}
    fi
    address=$(docker info --format '{{.Swarm.NodeAddr}}')
    export LO_IMAGE_PREFIX=$prefix LO_TAG=$TAG LO_GATEWAY_PORT=$PORT
    export LO_PUBLIC_URL=${PUBLIC_URL:-http://$address:$PORT}
    LO_CONFIG_ID=$(cat gateway/*.json swarm/*.js | sha256sum | cut -c1-12)
    export LO_CONFIG_ID
    say "deploying stack $STACK (images $prefix/*:$TAG)"
    # Local images carry no registry digest: do not ask a registry for one.
    docker stack deploy "${files[@]}" --prune \
        --resolve-image "$([ -n "$REGISTRY" ] && echo always || echo never)" "$STACK" >&2
    wait_until_healthy
    say "every service is healthy"
    if docker service inspect "${STACK}_lo-gateway" >/dev/null 2>&1; then
        echo "Learning Orchestra: $LO_PUBLIC_URL/api/learningOrchestra/v1"
        echo "studio: $LO_PUBLIC_URL/studio/ | API docs: $LO_PUBLIC_URL/docs"
    fi
}

remove() {
    local volumes=0 secrets=0 volume secret
    while [ $# -gt 0 ]; do
        case "$1" in
        --stack) STACK=${2:?--stack needs a name} && shift ;;
        --volumes) volumes=1 ;;
        --secrets) secrets=1 ;;
        -h | --help)
            remove_usage
            return
            ;;
        *)
            remove_usage >&2
            fail "unknown option '$1'"
            ;;
        esac
        shift
    done
    command -v docker >/dev/null 2>&1 || fail "the docker CLI is not installed"
    docker stack rm "$STACK"
    # The stack's containers stop in the background: a volume in use cannot be removed.
    local i
    for i in $(seq 60); do
        [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK")" ] && break
        [ "$i" = 60 ] && say "the stack's containers are still stopping"
        sleep 2
    done
    if [ "$volumes" = 1 ]; then
        for volume in $(docker volume ls -q --filter "label=com.docker.stack.namespace=$STACK"); do
            docker volume rm "$volume" >/dev/null && say "removed volume $volume"
        done
    else
        say "kept the volumes (every step's output, MongoDB's data): --volumes removes them"
    fi
    if [ "$secrets" = 1 ]; then
        for secret in lo_store_url lo_secret_key lo_api_tokens lo_mongo_password lo_mongo_keyfile; do
            docker secret rm "$secret" >/dev/null 2>&1 && say "removed secret $secret"
        done
    else
        say "kept the secrets: --secrets removes them"
    fi
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
deploy) deploy "$@" ;;
remove) remove "$@" ;;
*)
    echo "usage: swarm/deploy.sh deploy|remove [OPTIONS] (./run.sh deploy --help)" >&2
    exit 2
    ;;
esac
