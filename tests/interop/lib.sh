# Shared helpers for the interop tests: real third-party daemons on
# 127.0.0.1 high ports, started in the foreground with their PIDs kept,
# stopped by PID; every wait is a condition polled against a deadline.
# Source this file; it sets `set -euo pipefail` and a cleanup trap.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHATPULSE=${CHATPULSE:-$ROOT/target/debug/chatpulse}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/chatpulse-interop.XXXXXX")
OUT=${INTEROP_OUT:-$ROOT/tests/interop/out}
mkdir -p "$OUT"
PIDS=()
TEST_NAME=$(basename "$0" .sh)

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }

fail() {
  log "FAIL: $*"
  for f in "$WORK"/*.log; do
    [ -f "$f" ] || continue
    log "--- last lines of $(basename "$f")"
    tail -n 30 "$f" >&2 || true
  done
  exit 1
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -CONT "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts a command in the background, logging to $WORK/NAME.log; sets $LAST_PID.
spawn() {
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# A free TCP port on 127.0.0.1 (also free for UDP in practice: high, unused).
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_until DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.2 s.
wait_until() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "timed out after ${seconds}s waiting for: $what"
    fi
    sleep 0.2
  done
  log "ok: $what"
}

# Starts chatpulse on CONFIG and waits for /healthz; sets $CP_PID and $CP_URL.
start_chatpulse() {
  local config=$1 port=$2
  spawn chatpulse "$CHATPULSE" --config "$config" run
  CP_PID=$LAST_PID
  CP_URL="http://127.0.0.1:$port"
  wait_until "chatpulse serving /healthz" 20 curl -sf "$CP_URL/healthz"
}

# service_field ID JQ-FILTER: prints a field of one service from /api/v1/services.
service_field() {
  curl -sf "$CP_URL/api/v1/services" | jq -r --arg id "$1" ".services[] | select(.id == \$id) | $2"
}

# service_is ID STATUS: true when the service has that status.
service_is() {
  [ "$(service_field "$1" .status)" = "$2" ]
}

# probe_result_is ID PROBE RESULT: true when the probe's last result is RESULT.
probe_result_is() {
  [ "$(service_field "$1" ".probes[] | select(.id == \"$2\") | .last_result")" = "$3" ]
}

# start_knot: Knot DNS serving chat.test on a free port; sets DNS_PORT,
# KNOT_PID and KNOT_CONF. Purge: knotc -c "$KNOT_CONF" -f zone-purge chat.test +expire
start_knot() {
  DNS_PORT=$(free_port)
  mkdir -p "$WORK/knot"
  cat >"$WORK/chat.test.zone" <<ZONE
\$ORIGIN chat.test.
\$TTL 60
@    SOA ns1.chat.test. hostmaster.chat.test. 1 3600 600 86400 60
@    NS  ns1.chat.test.
ns1  A   127.0.0.1
web  A   192.0.2.10
ZONE
  KNOT_CONF="$WORK/knot.conf"
  cat >"$KNOT_CONF" <<CONF
server:
    rundir: "$WORK/knot"
    listen: [ 127.0.0.1@$DNS_PORT ]
database:
    storage: "$WORK/knot"
log:
  - target: stderr
    any: warning
zone:
  - domain: chat.test
    file: "$WORK/chat.test.zone"
    zonefile-sync: -1
    journal-content: none
CONF
  spawn knotd knotd -c "$KNOT_CONF"
  KNOT_PID=$LAST_PID
  wait_until "knot answering for chat.test" 20 kdig +timeout=1 +retry=0 @127.0.0.1 -p "$DNS_PORT" web.chat.test A
}

# npm_tools: installs tests/interop/node's pinned packages (once).
npm_tools() {
  local dir="$ROOT/tests/interop/node"
  if [ ! -d "$dir/node_modules/@grafana/schema" ] || [ ! -d "$dir/node_modules/playwright-core" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund >/dev/null 2>&1) || fail "npm ci in tests/interop/node failed"
  fi
  NODE_TOOLS=$dir
}

# config_header HTTP_PORT [VANTAGE]: the [monitor], [server] and [storage]
# sections every interop config starts with (fast probes, quick verdicts).
config_header() {
  cat <<CONF
[monitor]
vantage = "${2:-interop}"
interval = "300ms"
timeout = "250ms"
fail_after = 2
recover_after = 2
[server]
listen = "127.0.0.1:$1"
[storage]
path = "$WORK/history.db"
CONF
}

# dns_service ID NAME QUERY [LINE...]: a [[service]] with one dns probe asking
# the knot of start_knot for QUERY; each LINE (TOML) is added to the probe.
dns_service() {
  local id=$1 name=$2 query=$3 line
  shift 3
  printf '[[service]]\nid = "%s"\nname = "%s"\n  [[service.probe]]\n  kind = "dns"\n' "$id" "$name"
  printf '  query = "%s"\n  server = "127.0.0.1:%s"\n' "$query" "$DNS_PORT"
  for line in "$@"; do printf '  %s\n' "$line"; done
}

# http_service ID NAME URL: a [[service]] with one http probe of URL.
http_service() {
  printf '[[service]]\nid = "%s"\nname = "%s"\n  [[service.probe]]\n  kind = "http"\n  url = "%s"\n' "$1" "$2" "$3"
}
