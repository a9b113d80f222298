#!/usr/bin/env bash
# chatpulse against a real Knot DNS server: a served zone is up; purged, knot
# answers SERVFAIL and chatpulse says dns_servfail; stopped (SIGSTOP), it
# answers nothing and chatpulse says dns_timeout. promtool accepts the live
# /metrics throughout.
source "$(dirname "$0")/lib.sh"

HTTP_PORT=$(free_port)
start_knot

{
  config_header "$HTTP_PORT"
  dns_service whatsapp WhatsApp web.chat.test 'id = "auth"' 'recursion = false'
} >"$WORK/config.toml"

start_chatpulse "$WORK/config.toml" "$HTTP_PORT"
wait_until "whatsapp up against knot" 20 service_is whatsapp up

log "purging the zone: knot answers SERVFAIL"
knotc -c "$KNOT_CONF" -f zone-purge chat.test +expire >/dev/null
wait_until "probe result dns_servfail" 20 probe_result_is whatsapp auth dns_servfail
wait_until "whatsapp down" 20 service_is whatsapp down
cause=$(service_field whatsapp .cause.summary)
case "$cause" in
  dns:*SERVFAIL*) log "ok: cause is \"$cause\"" ;;
  *) fail "cause should name the DNS SERVFAIL, got \"$cause\"" ;;
esac

log "reloading the zone"
knotc -c "$KNOT_CONF" -b reload >/dev/null
wait_until "whatsapp up after reload" 20 service_is whatsapp up

log "stopping knot (SIGSTOP): no answer at all"
kill -STOP "$KNOT_PID"
wait_until "probe result dns_timeout" 20 probe_result_is whatsapp auth dns_timeout
wait_until "whatsapp down on timeouts" 20 service_is whatsapp down
kill -CONT "$KNOT_PID"
wait_until "whatsapp up after SIGCONT" 20 service_is whatsapp up

curl -sf "$CP_URL/metrics" >"$WORK/metrics.txt"
promtool check metrics <"$WORK/metrics.txt" || fail "promtool check metrics rejected /metrics"
grep -q 'chatpulse_probe_runs_total{service="whatsapp",probe="auth",kind="dns",result="dns_servfail"}' "$WORK/metrics.txt" \
  || fail "no dns_servfail run counted in /metrics"
grep -q 'chatpulse_probe_runs_total{service="whatsapp",probe="auth",kind="dns",result="dns_timeout"}' "$WORK/metrics.txt" \
  || fail "no dns_timeout run counted in /metrics"
log "ok: promtool check metrics passes on the live /metrics"
log "PASS"
