#!/usr/bin/env bash
# One command for the QA stack (FastAPI backend + Streamlit UI). Run ./start.sh --help.
# This script parses the arguments; the work is done by the Python package deploy/qa_stack
# (standard library only, any python3 >= 3.8; docs/stack.md).
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

die() {
  printf '\nERROR: %s\n' "$1" >&2
  shift
  for hint in "$@"; do printf '  -> %s\n' "$hint" >&2; done
  exit 1
}

# A word start.sh does not know: refused before anything starts (exit 2, as for bad usage).
refuse() {
  usage >&2
  printf '\nERROR: %s\n' "$1" >&2
  exit 2
}

MODE=docker CMD=up OPTIONS=() REPLICAS=
ARGS=()
TIMEOUT=${START_TIMEOUT:-900}
while [ $# -gt 0 ]; do
  case $1 in
    --local) MODE=local ;;
    --replicas)
      [ $# -ge 2 ] || refuse "--replicas needs the number of backend replicas, e.g. --replicas 3"
      [[ $2 =~ ^[1-9][0-9]*$ ]] || refuse "--replicas must be a whole number >= 1, got '$2'"
      REPLICAS=$2
      OPTIONS+=(--replicas "$2")
      shift
      ;;
    --timeout)
      [ $# -ge 2 ] || refuse "--timeout needs a number of seconds, e.g. --timeout 1800"
      TIMEOUT=$2
      shift
      ;;
    --no-build) OPTIONS+=(--no-build) ;;
    -h | --help) usage; exit 0 ;;
    up | start) CMD=up ;;
    stop | down) CMD=stop ;;
    logs | status | download) CMD=$1 ;;
    fastapi | streamlit) ARGS+=("$1") ;;
    -*) refuse "unknown option '$1'" ;;
    *) refuse "unknown command or service '$1' (the commands and services: above)" ;;
  esac
  shift
done
[ ${#ARGS[@]} -eq 0 ] || [ $CMD = logs ] ||
  refuse "a service (${ARGS[*]}) goes with logs only: ./start.sh logs ${ARGS[0]}"
[ $MODE = docker ] || [ -z "$REPLICAS" ] ||
  refuse "--replicas is for Docker; --local runs one backend (drop --replicas, or --local)"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds, got '$TIMEOUT'"

# Checked before Python is needed: Docker is the first thing a newcomer may lack.
if [ $MODE = docker ] && ! command -v docker >/dev/null; then
  die "Docker is not installed (no 'docker' command)." \
    "install Docker: https://docs.docker.com/engine/install/" \
    "or run without Docker: ./start.sh --local"
fi
PYTHON=$(command -v python3 || true)
[ -n "$PYTHON" ] || die "Python 3 is not installed (start.sh runs deploy/qa_stack with it)." \
  "install it, e.g. sudo apt install python3 (any 3.8 or newer)"
# The local services get .env's settings as their environment (compose reads .env itself).
if [ $MODE = local ] && [ -f .env ]; then
  set -a
  # shellcheck disable=SC1091
  . ./.env
  set +a
fi
exec "$PYTHON" deploy/qa_stack "$MODE" "$CMD" ${ARGS[@]+"${ARGS[@]}"} --timeout "$TIMEOUT" \
  ${OPTIONS[@]+"${OPTIONS[@]}"}
