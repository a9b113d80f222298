#!/usr/bin/env bash
# A real Prometheus scrapes a running chatpulse with one broken target: an
# instant query returns chatpulse_service_up 0 for that service and 1 for the
# others. promtool accepts the live /metrics, the shipped rules and their
# unit tests, and the sample Prometheus config; amtool the Alertmanager one.
source "$(dirname "$0")/lib.sh"

HTTP_PORT=$(free_port)
PROM_PORT=$(free_port)
BROKEN_PORT=$(free_port)   # nothing listens there
start_knot

{
  config_header "$HTTP_PORT"
  dns_service whatsapp WhatsApp web.chat.test
  dns_service telegram Telegram ns1.chat.test
  http_service signal Signal "http://127.0.0.1:$BROKEN_PORT/"
} >"$WORK/config.toml"
start_chatpulse "$WORK/config.toml" "$HTTP_PORT"
wait_until "signal down" 20 service_is signal down
wait_until "whatsapp up" 20 service_is whatsapp up
wait_until "telegram up" 20 service_is telegram up

cat >"$WORK/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/dashboards/alerts.yml
scrape_configs:
  - job_name: chatpulse
    static_configs:
      - targets: ["127.0.0.1:$HTTP_PORT"]
CONF
spawn prometheus prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT"
query() { curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1"; }
scraped() {
  [ "$(query chatpulse_service_up | jq -r '[.data.result[] | "\(.metric.service)=\(.value[1])"] | sort | join(",")')" = "signal=0,telegram=1,whatsapp=1" ]
}
wait_until "Prometheus sees chatpulse_service_up: signal 0, whatsapp 1, telegram 1" 60 scraped
status=$(query 'chatpulse_service_status{service="signal",status="down"}' | jq -r '.data.result[0].value[1]')
[ "$status" = "1" ] || fail "chatpulse_service_status{status=down} for signal is $status"
firing() { [ "$(curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/rules" | jq -r '.data.groups[].rules[] | select(.name=="ChatpulseServiceDown") | .state')" != "inactive" ]; }
wait_until "the shipped ChatpulseServiceDown rule pending or firing for signal" 60 firing

curl -sf "$CP_URL/metrics" >"$WORK/metrics.txt"
promtool check metrics <"$WORK/metrics.txt" || fail "promtool check metrics"
promtool check rules "$ROOT/dashboards/alerts.yml" || fail "promtool check rules"
(cd "$ROOT/dashboards" && promtool test rules alerts.test.yml) || fail "promtool test rules"
promtool check config "$ROOT/deploy/prometheus.yml" || fail "promtool check config deploy/prometheus.yml"
amtool check-config "$ROOT/deploy/alertmanager.yml" || fail "amtool check-config deploy/alertmanager.yml"
log "PASS"
