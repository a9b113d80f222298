#!/usr/bin/env bash
# Probe-path benchmark: chatpulse and prometheus-blackbox-exporter, side by
# side in one run, on the same local targets at the same rate.
#
#   bench/run.sh            (DURATION=30 by default; writes bench/out/results.md)
#   bench/run.sh scale      (100,000 probes at 60 s in three shapes, and 10,000;
#                            writes bench/out/scale.md)
#   bench/run.sh chat       (CPU per run of tcp, mtproto and whatsapp probes beside
#                            blackbox_exporter's tcp prober; writes bench/out/chat.md)
#   bench/run.sh delegation (servers = "delegation" beside a plain dns probe, on a knot
#                            root/TLD/zone hierarchy on 127.0.3.x:53; needs root;
#                            writes bench/out/delegation.md)
#
# Measures, from /proc (utime+stime, VmHWM) of each process:
#   1. CPU-seconds per 1,000 DNS and per 1,000 HTTP probes at 100 probes/s, and peak RSS;
#   2. chatpulse with 10,000 probes at a 10 s interval (5,000 DNS + 5,000 HTTP,
#      1,000 probes/s): CPU share of one core, peak RSS, p99 scheduling lateness.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DURATION=${DURATION:-30}
OUT=$ROOT/bench/out
mkdir -p "$OUT"
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# What it compares against (not installed by CI, which does not run benchmarks).
if ! command -v prometheus-blackbox-exporter >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus-blackbox-exporter
fi

cargo build --release --quiet --bin chatpulse --example bench
CP=$ROOT/target/release/chatpulse
BENCH=$ROOT/target/release/examples/bench
TCK=$(getconf CLK_TCK)
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
wait_http() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

DNS_PORT=$(port); HTTP_PORT=$(port)
"$BENCH" targets "$DNS_PORT" "$HTTP_PORT" >"$WORK/targets.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$HTTP_PORT/"

# chatpulse_config N_DNS N_HTTP INTERVAL PORT
# Services of PER_SERVICE probes each (100 by default), DNS probes first.
chatpulse_config() {
  local n_dns=$1 n_http=$2 interval=$3 listen=$4 per=${PER_SERVICE:-100}
  printf '[monitor]\ninterval = "%s"\ntimeout = "2s"\n[server]\nlisten = "127.0.0.1:%s"\n[storage]\npath = "%s/cp-%s.db"\n%b' \
    "$interval" "$listen" "$WORK" "$listen" "${CONFIG_EXTRA:-}"
  local i
  for ((i = 0; i < (n_dns + n_http + per - 1) / per; i++)); do
    printf '[[service]]\nid = "s%d"\nname = "S%d"\n' "$i" "$i"
    local j
    for ((j = 0; j < per; j++)); do
      local k=$((i * per + j))
      if [ -n "${PROBE_SNIPPET:-}" ] && ((k < n_dns + n_http)); then
        printf '%b' "$PROBE_SNIPPET"
      elif ((k < n_dns)); then
        printf '  [[service.probe]]\n  kind = "dns"\n  query = "web.chat.test"\n  server = "127.0.0.1:%s"\n' "$DNS_PORT"
      elif ((k < n_dns + n_http)); then
        printf '  [[service.probe]]\n  kind = "http"\n  url = "http://127.0.0.1:%s/"\n' "$HTTP_PORT"
      fi
    done
  done
}

# run_chatpulse NAME N_DNS N_HTTP INTERVAL SECONDS [scrape] -> "cpu_s runs peak_rss_mib p99_s steady_rss_mib"
# With "scrape", /metrics is fetched every second during the window (as a
# Prometheus at a 1 s scrape interval would), so lateness and peak RSS
# include the scrapes.
run_chatpulse() {
  local name=$1 listen
  listen=$(port)
  chatpulse_config "$2" "$3" "$4" "$listen" >"$WORK/$name.toml"
  "$CP" --config "$WORK/$name.toml" -q run 2>"$WORK/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  wait_http "http://127.0.0.1:$listen/healthz"
  # Let every probe start (first runs are spread over one interval).
  sleep "$(( ${4%s} + 2 ))"
  local steady; steady=$(rss_mib "$pid")
  curl -sf "http://127.0.0.1:$listen/metrics" >"$WORK/$name.before"
  local t0; t0=$(cpu_ticks "$pid")
  local scraper=""
  if [ "${6:-}" = scrape ]; then
    (while :; do curl -sf "http://127.0.0.1:$listen/metrics" >/dev/null; sleep "${SCRAPE_EVERY:-1}"; done) &
    scraper=$!
  fi
  sleep "$5"
  [ -n "$scraper" ] && { kill "$scraper"; wait "$scraper" 2>/dev/null || true; }
  local t1; t1=$(cpu_ticks "$pid")
  curl -sf "http://127.0.0.1:$listen/metrics" >"$WORK/$name.after"
  local rss; rss=$(peak_rss_mib "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  read -r runs p99 < <(/usr/bin/python3 "$ROOT/bench/metrics.py" "$WORK/$name.before" "$WORK/$name.after")
  echo "$(echo "scale=3; ($t1 - $t0) / $TCK" | bc) $runs $rss $p99 $steady"
}

# run_blackbox NAME MODULE TARGET SECONDS -> "cpu_s probes rss_mib"
run_blackbox() {
  local name=$1 module=$2 target=$3 listen
  listen=$(port)
  cat >"$WORK/bb.yml" <<YML
modules:
  dns_x:
    prober: dns
    timeout: 2s
    dns:
      query_name: web.chat.test
      query_type: A
      transport_protocol: udp
      preferred_ip_protocol: ip4
  http_x:
    prober: http
    timeout: 2s
    http:
      preferred_ip_protocol: ip4
  tcp_x:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
YML
  prometheus-blackbox-exporter --config.file="$WORK/bb.yml" --web.listen-address="127.0.0.1:$listen" 2>"$WORK/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  wait_http "http://127.0.0.1:$listen/metrics"
  local url="http://127.0.0.1:$listen/probe?module=$module&target=$target"
  "$BENCH" drive "$url" 100 3 >/dev/null   # warm up
  local t0; t0=$(cpu_ticks "$pid")
  local ok; ok=$("$BENCH" drive "$url" 100 "$4")
  local t1; t1=$(cpu_ticks "$pid")
  local rss; rss=$(peak_rss_mib "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$(echo "scale=3; ($t1 - $t0) / $TCK" | bc) $ok $rss"
}

per_1000() { echo "scale=3; 1000 * $1 / $2" | bc | sed 's/^\./0./'; }
ratio() { echo "scale=3; ($1 * $4) / ($2 * $3)" | bc | sed 's/^\./0./; s/$/x/'; }

if [ "${1:-}" = chat ]; then
  # bench/run.sh chat: 1,000 probes of one kind at 10 s (100 runs/s) for
  # DURATION seconds each, against the tests' protocol stand-ins, beside
  # blackbox_exporter's tcp prober at 100/s on the same TCP target.
  "$BENCH" chat-targets "$WORK/chat.addrs" >"$WORK/chat-targets.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do [ -s "$WORK/chat.addrs" ] && break; sleep 0.1; done
  read -r TCP_T MT_T WA_T WS_T ROOT_KEY <"$WORK/chat.addrs"
  declare -A SNIP=(
    [tcp]="  [[service.probe]]\n  kind = \"tcp\"\n  address = \"$TCP_T\"\n"
    [mtproto]="  [[service.probe]]\n  kind = \"mtproto\"\n  address = \"$MT_T\"\n"
    [whatsapp]="  [[service.probe]]\n  kind = \"whatsapp\"\n  address = \"$WA_T\"\n  root_key = \"$ROOT_KEY\"\n"
    [whatsapp-ws]="  [[service.probe]]\n  kind = \"whatsapp\"\n  url = \"ws://$WS_T/ws/chat\"\n  root_key = \"$ROOT_KEY\"\n"
  )
  rows=""
  for kind in tcp mtproto whatsapp whatsapp-ws; do
    echo "== chatpulse: 1,000 $kind probes at 10 s (100 probes/s) for ${DURATION}s"
    read -r cpu runs rss _ < <(PROBE_SNIPPET="${SNIP[$kind]}" run_chatpulse "chat-$kind" 1000 0 10s "$DURATION")
    rows+="| $kind | $(per_1000 "$cpu" "$runs") | $runs | $rss |"$'\n'
    eval "cpu_$(echo "$kind" | tr - _)=$cpu runs_$(echo "$kind" | tr - _)=$runs"
  done
  echo "== blackbox_exporter: tcp /probe at 100/s for ${DURATION}s"
  read -r bb_tcp_cpu bb_tcp_runs bb_tcp_rss < <(run_blackbox bbtcp tcp_x "$TCP_T" "$DURATION")
  cat >"$OUT/chat.md" <<MD
Run on $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, DURATION=${DURATION}s. Command: \`bench/run.sh chat\`.

| chatpulse probe kind (100 runs/s) | CPU-seconds per 1,000 runs | runs | peak RSS (MiB) |
|---|---|---|---|
${rows}| blackbox_exporter tcp prober (100/s) | $(per_1000 "$bb_tcp_cpu" "$bb_tcp_runs") | $bb_tcp_runs | $bb_tcp_rss |

| ratio to blackbox_exporter's tcp prober | |
|---|---|
| tcp | $(ratio "$cpu_tcp" "$runs_tcp" "$bb_tcp_cpu" "$bb_tcp_runs") |
| mtproto | $(ratio "$cpu_mtproto" "$runs_mtproto" "$bb_tcp_cpu" "$bb_tcp_runs") |
| whatsapp (TCP) | $(ratio "$cpu_whatsapp" "$runs_whatsapp" "$bb_tcp_cpu" "$bb_tcp_runs") |
| whatsapp (WebSocket) | $(ratio "$cpu_whatsapp_ws" "$runs_whatsapp_ws" "$bb_tcp_cpu" "$bb_tcp_runs") |
MD
  cat "$OUT/chat.md"
  exit 0
fi

if [ "${1:-}" = delegation ]; then
  # bench/run.sh delegation: 1,000 probes at 10 s (100 runs/s) each way, for
  # DURATION seconds: servers = "delegation" (warm referral cache) and a
  # plain probe asking one zone server directly; queries counted by knot.
  command -v knotd >/dev/null || apt-get install -y -q --no-install-recommends knot knot-dnsutils
  # start_knot NAME IP ORIGIN ZONE_TEXT
  start_knot() {
    local dir="$WORK/knot-$1"
    mkdir -p "$dir"
    printf '%b' "$4" >"$dir/zone"
    cat >"$dir/knot.conf" <<KNOT
server:
    rundir: "$dir"
    listen: [ $2@53 ]
database:
    storage: "$dir"
log:
  - target: stderr
    any: warning
mod-stats:
  - id: stats
template:
  - id: default
    global-module: mod-stats/stats
zone:
  - domain: "$3"
    file: "$dir/zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
KNOT
    knotd -c "$dir/knot.conf" 2>"$dir/log" &
    PIDS+=($!)
  }
  knot_queries() {
    knotc -c "$WORK/knot-$1/knot.conf" -t 5 stats mod-stats.request-protocol 2>/dev/null \
      | awk -F'= ' '{ n += $2 } END { print n + 0 }'
  }
  start_knot root 127.0.3.1 . '$TTL 3600\n. SOA a.root-servers.net. h.root-servers.net. 1 3600 600 86400 60\n. NS a.root-servers.net.\na.root-servers.net. A 127.0.3.1\ntest. NS ns.test.\nns.test. A 127.0.3.2\n'
  start_knot tld 127.0.3.2 test. '$TTL 3600\ntest. SOA ns.test. h.test. 1 3600 600 86400 60\ntest. NS ns.test.\nns.test. A 127.0.3.2\nchat.test. NS ns1.chat.test.\nchat.test. NS ns2.chat.test.\nns1.chat.test. A 127.0.3.3\nns2.chat.test. A 127.0.3.4\n'
  ZONE='$TTL 300\nchat.test. SOA ns1.chat.test. h.chat.test. 1 3600 600 86400 60\nchat.test. NS ns1.chat.test.\nchat.test. NS ns2.chat.test.\nns1.chat.test. A 127.0.3.3\nns2.chat.test. A 127.0.3.4\nwww.chat.test. A 192.0.2.10\n'
  start_knot ns1 127.0.3.3 chat.test. "$ZONE"
  start_knot ns2 127.0.3.4 chat.test. "$ZONE"
  for _ in $(seq 50); do [ "$(knot_queries ns2)" != "" ] && kdig @127.0.3.4 www.chat.test +short >/dev/null 2>&1 && break; sleep 0.1; done
  rows=""
  for mode in plain delegation; do
    if [ "$mode" = plain ]; then
      snippet='  [[service.probe]]\n  kind = "dns"\n  query = "www.chat.test"\n  server = "127.0.3.3:53"\n  recursion = false\n'
      extra=""
    else
      snippet='  [[service.probe]]\n  kind = "dns"\n  query = "www.chat.test"\n  servers = "delegation"\n'
      extra='[dns]\nroots = ["127.0.3.1"]\n'
    fi
    before=(); for k in root tld ns1 ns2; do before+=("$(knot_queries $k)"); done
    echo "== chatpulse: 1,000 $mode dns probes at 10 s (100 probes/s) for ${DURATION}s"
    read -r cpu runs rss _ < <(CONFIG_EXTRA="$extra" PROBE_SNIPPET="$snippet" run_chatpulse "dns-$mode" 1000 0 10s "$DURATION")
    after=(); for k in root tld ns1 ns2; do after+=("$(knot_queries $k)"); done
    # Queries over the whole life of the process (start-up and warm-up
    # included), against the runs of the measured window.
    q=(); for i in 0 1 2 3; do q+=($(( after[i] - before[i] ))); done
    rows+="| $mode | $(per_1000 "$cpu" "$runs") | $runs | ${q[0]} / ${q[1]} / ${q[2]} / ${q[3]} | $rss |"$'\n'
  done
  cat >"$OUT/delegation.md" <<MD
Run on $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, DURATION=${DURATION}s. Command: \`bench/run.sh delegation\`.

| dns probe (1,000 probes, 100 runs/s) | CPU-seconds per 1,000 runs | runs measured | queries to root / TLD / ns1 / ns2 (whole process life) | peak RSS (MiB) |
|---|---|---|---|---|
${rows}
MD
  cat "$OUT/delegation.md"
  exit 0
fi

if [ "${1:-}" = scale ]; then
  # bench/run.sh scale: 100,000 probes at a 60 s interval (1,667 runs/s) for
  # 2 minutes, scraped every 15 s, in three shapes — memory must not depend
  # on how the probes are grouped — and 10,000 probes in the DNS shape.
  {
    echo "Run on $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores. Command: \`bench/run.sh scale\`."
    echo
    echo "| shape (probes at 60 s, scraped every 15 s) | CPU, share of one core | steady RSS (MiB) | peak RSS, VmHWM (MiB) | runs in 120 s | p99 lateness |"
    echo "|---|---|---|---|---|---|"
  } >"$OUT/scale.md"
  scale_row() {
    local label=$1 per=$2 dns=$3 http=$4 expect=$5
    echo "== chatpulse: $label"
    local cpu runs rss p99 steady
    read -r cpu runs rss p99 steady < <(PER_SERVICE=$per SCRAPE_EVERY=15 run_chatpulse "scale-$per-$dns" "$dns" "$http" 60s 120 scrape)
    echo "| $label | $(echo "scale=1; 100 * $cpu / 120" | bc) % | $steady | $rss | $runs (expected $expect) | $(/usr/bin/python3 -c "print(f'{float(\"$p99\") * 1000:g} ms')") |" >>"$OUT/scale.md"
  }
  scale_row "100,000: 500 services × 100 DNS + 500 × 100 HTTP (the 50/50 mix)" 100 50000 50000 200000
  scale_row "100,000: 1,000 services × 100 DNS" 100 100000 0 200000
  scale_row "100,000: 100,000 services × 1 DNS" 1 100000 0 200000
  scale_row "10,000: 100 services × 100 DNS" 100 10000 0 20000
  cat "$OUT/scale.md"
  exit 0
fi

echo "== chatpulse: 1,000 DNS probes at 10 s (100 probes/s) for ${DURATION}s"
read -r cp_dns_cpu cp_dns_runs cp_dns_rss _ < <(run_chatpulse dns 1000 0 10s "$DURATION")
echo "== blackbox_exporter: DNS /probe at 100/s for ${DURATION}s"
read -r bb_dns_cpu bb_dns_runs bb_dns_rss < <(run_blackbox bbdns dns_x "127.0.0.1:$DNS_PORT" "$DURATION")
echo "== chatpulse: 1,000 HTTP probes at 10 s (100 probes/s) for ${DURATION}s"
read -r cp_http_cpu cp_http_runs cp_http_rss _ < <(run_chatpulse http 0 1000 10s "$DURATION")
echo "== blackbox_exporter: HTTP /probe at 100/s for ${DURATION}s"
read -r bb_http_cpu bb_http_runs bb_http_rss < <(run_blackbox bbhttp http_x "http://127.0.0.1:$HTTP_PORT/" "$DURATION")
echo "== chatpulse: 10,000 probes (5,000 DNS + 5,000 HTTP) at 10 s for $((DURATION * 2))s, /metrics scraped every second"
read -r big_cpu big_runs big_rss big_p99 big_steady < <(run_chatpulse big 5000 5000 10s "$((DURATION * 2))" scrape)

cat >"$OUT/results.md" <<MD
Run on $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, DURATION=${DURATION}s. Command: \`bench/run.sh\`.

| measurement | chatpulse | blackbox_exporter | ratio |
|---|---|---|---|
| CPU-seconds per 1,000 DNS probes (100/s) | $(per_1000 "$cp_dns_cpu" "$cp_dns_runs") | $(per_1000 "$bb_dns_cpu" "$bb_dns_runs") | $(ratio "$cp_dns_cpu" "$cp_dns_runs" "$bb_dns_cpu" "$bb_dns_runs") |
| CPU-seconds per 1,000 HTTP probes (100/s) | $(per_1000 "$cp_http_cpu" "$cp_http_runs") | $(per_1000 "$bb_http_cpu" "$bb_http_runs") | $(ratio "$cp_http_cpu" "$cp_http_runs" "$bb_http_cpu" "$bb_http_runs") |
| peak RSS, DNS run (MiB) | $cp_dns_rss | $bb_dns_rss | |
| peak RSS, HTTP run (MiB) | $cp_http_rss | $bb_http_rss | |
| probes completed (DNS / HTTP) | $cp_dns_runs / $cp_http_runs | $bb_dns_runs / $bb_http_runs | |

chatpulse with 10,000 probes at a 10 s interval (1,000 probes/s, half DNS, half HTTP), /metrics scraped every second throughout:

| measurement | value |
|---|---|
| CPU, share of one core (scrapes included) | $(echo "scale=1; 100 * $big_cpu / ($DURATION * 2)" | bc) % |
| RSS before the first /metrics scrape (steady state) | $big_steady MiB |
| peak RSS (VmHWM, including a /metrics scrape of 10,000 probes every second) | $big_rss MiB |
| probes completed in $((DURATION * 2)) s | $big_runs |
| p99 scheduling lateness while scraped (histogram bucket bound) | $(/usr/bin/python3 -c "print(f'{float(\"$big_p99\") * 1000:g} ms')") |
MD
cat "$OUT/results.md"
