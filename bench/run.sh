#!/usr/bin/env bash
# Probe-path benchmark: chatpulse and prometheus-blackbox-exporter, side by
# side in one run, on the same local targets at the same rate.
#
#   bench/run.sh            (DURATION=30 by default; writes bench/out/results.md)
#   bench/run.sh scale      (100,000 probes at 60 s; writes bench/out/scale.md)
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
chatpulse_config() {
  local n_dns=$1 n_http=$2 interval=$3 listen=$4
  printf '[monitor]\ninterval = "%s"\ntimeout = "2s"\n[server]\nlisten = "127.0.0.1:%s"\n[storage]\npath = "%s/cp-%s.db"\n' \
    "$interval" "$listen" "$WORK" "$listen"
  local i
  for ((i = 0; i < (n_dns + n_http + 99) / 100; i++)); do
    printf '[[service]]\nid = "s%d"\nname = "S%d"\n' "$i" "$i"
    local j
    for ((j = 0; j < 100; j++)); do
      local k=$((i * 100 + j))
      if ((k < n_dns)); then
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

if [ "${1:-}" = scale ]; then
  # bench/run.sh scale: 100,000 probes (50,000 DNS + 50,000 HTTP) at a 60 s
  # interval (1,667 runs/s) for 2 minutes, scraped every 15 s.
  echo "== chatpulse: 100,000 probes at 60 s for 120s, /metrics scraped every 15 s"
  read -r sc_cpu sc_runs sc_rss sc_p99 sc_steady < <(SCRAPE_EVERY=15 run_chatpulse scale 50000 50000 60s 120 scrape)
  cat >"$OUT/scale.md" <<MD
Run on $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores. Command: \`bench/run.sh scale\`.

| measurement | value |
|---|---|
| CPU, share of one core (scrapes included) | $(echo "scale=1; 100 * $sc_cpu / 120" | bc) % |
| RSS before the first /metrics scrape (steady state) | $sc_steady MiB |
| peak RSS (VmHWM, scraped every 15 s) | $sc_rss MiB |
| probes completed in 120 s (1,667/s expected: 200,000) | $sc_runs |
| p99 scheduling lateness (histogram bucket bound) | $(/usr/bin/python3 -c "print(f'{float(\"$sc_p99\") * 1000:g} ms')") |
MD
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
