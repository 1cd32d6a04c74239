#!/usr/bin/env bash
# One command for the QA stack (FastAPI backend + Streamlit UI). Run ./start.sh --help.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  cat <<'EOF'
Usage: ./start.sh [options] [command]

Commands (Docker, the default):
  up            build and start the stack detached, wait until healthy, print the URLs (default)
  stop          stop and remove the containers (the downloaded model stays in its volume)
  logs [svc]    follow the logs (svc: fastapi or streamlit)
  status        containers and their health
  download      pre-download the model(s) into the model cache volume, then exit

Options:
  --local         run both services as local processes from .venv instead (up|stop|logs|status)
  --replicas N    run N backend replicas (Docker; give FASTAPI_PORT a range, e.g. 8008-8010)
  --timeout S     seconds to wait for health (default 900; env START_TIMEOUT)
  --no-build      start the images already built
  -h, --help      this help

Settings come from the environment or .env (see .env.example), e.g. FASTAPI_PORT, STREAMLIT_PORT,
QA_MODELS, MODELS_DIR. docker compose reads COMPOSE_FILE and COMPOSE_PROJECT_NAME as usual.
EOF
}

log() { printf '==> %s\n' "$*"; }
die() {
  printf '\nERROR: %s\n' "$1" >&2
  shift
  for hint in "$@"; do printf '  -> %s\n' "$hint" >&2; done
  exit 1
}

# A setting from the environment, else from .env, else the default.
setting() {
  local name=$1 default=$2 line
  if [ -n "${!name+x}" ]; then printf '%s' "${!name}"; return; fi
  if [ -f .env ] && line=$(grep -E "^${name}=" .env | tail -n 1); then
    line=${line#*=}; line=${line%\"}; line=${line#\"}; line=${line%\'}; line=${line#\'}
    printf '%s' "$line"; return
  fi
  printf '%s' "$default"
}

MODE=docker CMD=up REPLICAS="" BUILD=1
TIMEOUT=${START_TIMEOUT:-900}
ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --local) MODE=local ;;
    --replicas) REPLICAS=${2:?--replicas needs a number}; shift ;;
    --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift ;;
    --no-build) BUILD=0 ;;
    -h | --help) usage; exit 0 ;;
    up | start | stop | down | logs | status | download) CMD=$1 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done
[ "$CMD" = start ] && CMD=up
[ "$CMD" = down ] && CMD=stop
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds, got '$TIMEOUT'"
[ -z "$REPLICAS" ] || [[ $REPLICAS =~ ^[1-9][0-9]*$ ]] || die "--replicas must be >= 1, got '$REPLICAS'"

FASTAPI_PORT=$(setting FASTAPI_PORT 8008)
STREAMLIT_PORT=$(setting STREAMLIT_PORT 8501)
API_HOST_PORT=${FASTAPI_PORT%%-*} # first port of a range
TTY=0
[ -t 1 ] && TTY=1

print_urls() {
  printf '\nThe stack is up:\n'
  printf '  UI        http://localhost:%s\n' "$STREAMLIT_PORT"
  printf '  API docs  http://localhost:%s/docs\n' "$API_HOST_PORT"
  printf '  Health    http://localhost:%s/health/ready\n' "$API_HOST_PORT"
  printf 'Logs: ./start.sh %slogs   Stop: ./start.sh %sstop\n' "$1" "$1"
}

# What listens on a TCP port of this host ("" when nothing).
port_user() {
  local port=$1 who=""
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || return 0
  if command -v ss >/dev/null; then
    who=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'users:(("[^"]*"' | cut -d'"' -f2 | head -n 1 || true)
  fi
  echo "${who:-another program}"
}

check_port() {
  local port=$1 var=$2 who
  who=$(port_user "$port")
  [ -z "$who" ] && return 0
  die "port $port is already in use (by: $who)." \
    "stop that program, or pick a free port: $var=<port> ./start.sh (or set it in .env)" \
    "see what holds it: ss -ltnp 'sport = :$port'"
}

# ---------------------------------------------------------------------------------------------
# Docker
# ---------------------------------------------------------------------------------------------
COMPOSE=()
detect_docker() {
  command -v docker >/dev/null \
    || die "Docker is not installed (no 'docker' command)." \
      "install Docker: https://docs.docker.com/engine/install/" \
      "or run without Docker: ./start.sh --local"
  local err
  if ! err=$(docker info 2>&1 >/dev/null); then
    die "cannot talk to the Docker daemon: $(printf '%s' "$err" | tail -n 1)" \
      "start it (sudo systemctl start docker, or open Docker Desktop)" \
      "permission denied? add yourself to the docker group: sudo usermod -aG docker \$USER (then log in again)"
  fi
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
  else
    die "Docker Compose is missing (neither 'docker compose' nor 'docker-compose')." \
      "install it: https://docs.docker.com/compose/install/"
  fi
}

compose() { "${COMPOSE[@]}" "$@"; }

scale_args() {
  [ -n "$REPLICAS" ] && printf -- '--scale\nfastapi=%s\n' "$REPLICAS"
  return 0
}

# Python helpers: real modules in deploy/qa_stack, run as files (deploy/qa_stack/__init__.py).
HELPERS=deploy/qa_stack

# Readiness of one backend container as "status|reason", asked from inside the container.
backend_readiness() {
  docker exec -i "$1" python - <"$HELPERS/readiness.py" 2>/dev/null || echo "starting|"
}

container_failed() {
  local svc=$1 cid=$2 info=$3
  local code oom
  code=$(docker inspect -f '{{.State.ExitCode}}' "$cid")
  oom=$(docker inspect -f '{{.State.OOMKilled}}' "$cid")
  printf '\nLast log lines of %s:\n' "$svc" >&2
  docker logs --tail 30 "$cid" 2>&1 | sed 's/^/  | /' >&2
  if [ "$oom" = true ] || [ "$code" = 137 ]; then
    die "$svc was killed for lack of memory (exit 137, OOM)." \
      "raise its limit in .env: FASTAPI_MEMORY=4g (or STREAMLIT_MEMORY), or give Docker Desktop more memory" \
      "or use a smaller runtime: QA_BACKEND=onnx-int8"
  fi
  die "$svc stopped ($info, exit code $code)." "full logs: ./start.sh logs $svc"
}

# One progress line per wait step: redrawn in place on a terminal, every 10 s otherwise.
# Reads and updates the caller's elapsed, detail and last_print (bash's dynamic scope).
show_progress() {
  if [ $TTY = 1 ]; then
    printf '\r\033[K   waiting for %s: %3ss  %s' "$1" "$elapsed" "${detail:0:100}"
  elif [ $((elapsed - last_print)) -ge 10 ]; then
    printf '   waiting for %s: %3ss  %s\n' "$1" "$elapsed" "$detail"
    last_print=$elapsed
  fi
}

# Wait until every container of a service is healthy, showing progress.
wait_healthy() {
  local svc=$1 start=$SECONDS last_print=-100 cids cid health state detail
  while :; do
    local elapsed=$((SECONDS - start)) all_ok=1
    detail=""
    mapfile -t cids < <(compose ps -q "$svc" 2>/dev/null)
    [ ${#cids[@]} -gt 0 ] || die "no $svc container was created." "see: ./start.sh logs $svc"
    for cid in "${cids[@]}"; do
      state=$(docker inspect -f '{{.State.Status}} {{.RestartCount}}' "$cid")
      health=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$cid")
      case $state in
        running\ 0) ;;
        running\ *) container_failed "$svc" "$cid" "it crashed and was restarted" ;;
        *) container_failed "$svc" "$cid" "${state% *}" ;;
      esac
      [ "$health" = healthy ] && continue
      all_ok=0
      if [ "$svc" = fastapi ]; then
        local ready status reason
        ready=$(backend_readiness "$cid")
        status=${ready%%|*} reason=${ready#*|}
        if [ "$status" = failed ]; then
          printf '\nLast log lines of fastapi:\n' >&2
          docker logs --tail 20 "$cid" 2>&1 | sed 's/^/  | /' >&2
          die "the backend could not load its model: ${reason:-see the logs}" \
            "no internet? pre-download it (./start.sh download) or mount a local model: MODELS_DIR + QA_MODELS (see .env.example)" \
            "after fixing: ./start.sh stop && ./start.sh"
        fi
        detail="$status${reason:+ - $reason}"
      else
        detail=${health:-starting}
      fi
      if [ "$health" = unhealthy ]; then
        docker inspect -f '{{range .State.Health.Log}}{{.Output}}{{end}}' "$cid" | tail -n 5 >&2
        container_failed "$svc" "$cid" "its health check keeps failing"
      fi
    done
    if [ $all_ok = 1 ]; then
      [ $TTY = 1 ] && printf '\r\033[K'
      log "$svc is healthy (${elapsed}s)"
      return 0
    fi
    if [ "$elapsed" -ge "$TIMEOUT" ]; then
      [ $TTY = 1 ] && printf '\n'
      die "$svc did not become healthy within ${TIMEOUT}s (last state: $detail)." \
        "a first start downloads the model (~440 MB): wait longer with --timeout 1800" \
        "see what it is doing: ./start.sh logs $svc"
    fi
    show_progress "$svc"
    sleep 2
  done
}

# A mounted model the backend's user may not read: found by the backend's own check in a one-off
# container (same image, user and mounts) before anything starts; prints the fix.
check_models_readable() {
  local models_dir out err rc=0 lines
  models_dir=$(setting MODELS_DIR "")
  [ -n "$models_dir" ] || return 0
  [[ $models_dir == ./* ]] && models_dir="$PWD/${models_dir#./}"
  err=$(mktemp)
  out=$(compose run --rm --no-deps -T fastapi python - check-readable "$models_dir" \
    <"$HELPERS/models.py" 2>"$err") || rc=$?
  if [ $rc = 1 ] && [ -n "$out" ]; then
    rm -f "$err"
    mapfile -t lines <<<"$out"
    die "${lines[@]}"
  fi
  if [ $rc != 0 ]; then
    cat "$err" >&2
    rm -f "$err"
    die "could not check the mounted models (output above)."
  fi
  rm -f "$err"
}

compose_up() {
  local out
  if ! out=$(compose up -d "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    if grep -qiE 'address already in use|port is already allocated' <<<"$out"; then
      die "a host port is taken." \
        "pick free ports: FASTAPI_PORT=<port> STREAMLIT_PORT=<port> ./start.sh (or set them in .env)"
    fi
    die "docker compose could not start the stack (output above)."
  fi
}

docker_up() {
  detect_docker
  local running
  running=$(compose ps -q 2>/dev/null || true)
  if [ -z "$running" ]; then
    [[ $FASTAPI_PORT == *-* ]] || check_port "$FASTAPI_PORT" FASTAPI_PORT
    check_port "$STREAMLIT_PORT" STREAMLIT_PORT
  fi
  if [ $BUILD = 1 ]; then
    log "building the images (${COMPOSE[*]} build)"
    compose build || die "the image build failed (output above)." \
      "cannot reach download.pytorch.org? build with pip's default index: TORCH_INDEX_URL= ./start.sh"
  fi
  check_models_readable
  local scale=()
  mapfile -t scale < <(scale_args)
  log "starting the backend"
  compose_up "${scale[@]}" fastapi
  wait_healthy fastapi
  log "starting the UI"
  compose_up "${scale[@]}"
  wait_healthy streamlit
  print_urls ""
}

docker_status() {
  detect_docker
  compose ps
}

# Pre-download the configured Hub models into the cache volume (no server started).
docker_download() {
  detect_docker
  [ $BUILD = 1 ] && { compose build fastapi || die "the image build failed (output above)."; }
  log "downloading into the models-cache volume"
  compose run --rm --no-deps -T fastapi python - download <"$HELPERS/models.py" \
    || die "the download failed (output above)." \
      "check the internet connection from Docker, or use a local model directory (MODELS_DIR, .env.example)"
  log "done: the next ./start.sh loads the model from the cache"
}

# ---------------------------------------------------------------------------------------------
# Local processes (no Docker)
# ---------------------------------------------------------------------------------------------
RUN_DIR=.run
VENV=.venv

local_pid() {
  local f=$RUN_DIR/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

local_env() {
  if [ -f .env ]; then
    set -a
    # shellcheck disable=SC1091
    . ./.env
    set +a
  fi
}

local_venv() {
  local py
  if [ ! -x $VENV/bin/python ]; then
    py=$(command -v python3.11 || command -v python3 || true)
    [ -n "$py" ] || die "Python 3.11 is not installed." "install it (e.g. sudo apt install python3.11 python3.11-venv)"
    "$py" "$HELPERS/localenv.py" version \
      || die "$py is older than Python 3.11." "install Python 3.11 or newer"
    log "creating $VENV"
    "$py" -m venv $VENV || die "could not create $VENV." "install the venv module: sudo apt install python3-venv"
  fi
  if ! $VENV/bin/python "$HELPERS/localenv.py" packages >/dev/null 2>&1; then
    local index
    index=$(setting TORCH_INDEX_URL https://download.pytorch.org/whl/cpu)
    log "installing the runtime dependencies into $VENV"
    if ! { $VENV/bin/pip install ${index:+--index-url "$index"} torch==2.13.0 \
      && $VENV/bin/pip install -r fastapi/requirements.txt -r streamlit/requirements.txt; }; then
      die "installing the dependencies failed (output above)." \
        "cannot reach download.pytorch.org? TORCH_INDEX_URL= ./start.sh --local"
    fi
  fi
}

local_wait() {
  local name=$1 url=$2 start=$SECONDS last_print=-100 ready status detail
  while :; do
    local elapsed=$((SECONDS - start))
    if ! local_pid "$name" >/dev/null; then
      printf '\nLast lines of %s/%s.log:\n' "$RUN_DIR" "$name" >&2
      tail -n 30 "$RUN_DIR/$name.log" | sed 's/^/  | /' >&2
      die "$name exited during start-up (log above)."
    fi
    ready=$($VENV/bin/python "$HELPERS/readiness.py" "$url" 2>/dev/null || echo "starting|")
    status=${ready%%|*} detail=${ready#*|}
    [ "$status" = failed ] || detail="$status${detail:+ - $detail}"
    if [ "$status" = ready ]; then
      [ $TTY = 1 ] && printf '\r\033[K'
      log "$name is healthy (${elapsed}s)"
      return 0
    fi
    if [ "$status" = failed ]; then
      die "the backend could not load its model: $detail" "full log: $RUN_DIR/$name.log"
    fi
    [ "$elapsed" -ge "$TIMEOUT" ] && die "$name did not become healthy within ${TIMEOUT}s ($detail)." \
      "full log: $RUN_DIR/$name.log"
    show_progress "$name"
    sleep 2
  done
}

local_start() {
  local name=$1 dir=$2
  shift 2
  (cd "$dir" && exec setsid "$@") >"$RUN_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

local_up() {
  [[ $FASTAPI_PORT =~ ^[0-9]+$ ]] || die "--local needs a single FASTAPI_PORT, got '$FASTAPI_PORT'"
  if local_pid fastapi >/dev/null || local_pid streamlit >/dev/null; then
    die "the local stack is already running." "./start.sh --local status / ./start.sh --local stop"
  fi
  check_port "$FASTAPI_PORT" FASTAPI_PORT
  check_port "$STREAMLIT_PORT" STREAMLIT_PORT
  local_venv
  local_env
  mkdir -p $RUN_DIR
  local root=$PWD
  log "starting the backend (log: $RUN_DIR/fastapi.log)"
  local_start fastapi fastapi "$root/$VENV/bin/uvicorn" qa_api.main:create_app --factory \
    --http qa_api.http_protocol:HttpProtocol --host 127.0.0.1 --port "$FASTAPI_PORT"
  local_wait fastapi "http://127.0.0.1:$FASTAPI_PORT/health/ready"
  log "starting the UI (log: $RUN_DIR/streamlit.log)"
  local_start streamlit streamlit env QA_UI_BACKEND_URL="http://127.0.0.1:$FASTAPI_PORT" \
    QA_UI_PUBLIC_API_URL="http://localhost:$FASTAPI_PORT" QA_UI_API_KEY="${QA_API_KEY:-}" \
    "$root/$VENV/bin/streamlit" run app.py \
    --server.port "$STREAMLIT_PORT" --server.address 127.0.0.1 --server.headless true \
    --browser.gatherUsageStats false
  local_wait streamlit "http://127.0.0.1:$STREAMLIT_PORT/_stcore/health"
  API_HOST_PORT=$FASTAPI_PORT
  print_urls "--local "
}

local_stop() {
  local name pid
  for name in streamlit fastapi; do
    if pid=$(local_pid $name); then
      log "stopping $name (pid $pid)"
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
    fi
    rm -f "$RUN_DIR/$name.pid"
  done
  return 0
}

local_status() {
  local name pid
  for name in fastapi streamlit; do
    if pid=$(local_pid $name); then echo "$name: running (pid $pid)"; else echo "$name: stopped"; fi
  done
}

# ---------------------------------------------------------------------------------------------
case $MODE:$CMD in
  docker:up) docker_up ;;
  docker:stop) detect_docker; compose down --remove-orphans ;;
  docker:logs) detect_docker; compose logs -f --tail=100 "${ARGS[@]}" ;;
  docker:status) docker_status ;;
  docker:download) docker_download ;;
  local:up) local_up ;;
  local:stop) local_stop ;;
  local:logs) tail -n 100 -f $RUN_DIR/*.log ;;
  local:status) local_status ;;
  local:download) die "download is for the Docker volume; --local uses your Hugging Face cache (downloaded on first start)" ;;
esac
