#!/usr/bin/env bash
# chatpulse beyond one machine: three instances (vantage points ams, nyc,
# sin), a real Prometheus evaluating the shipped rules and a real
# Alertmanager with the shipped routing, delivering to aiosmtpd. One vantage
# point seeing WhatsApp down raises no page; two do, and the page e-mail
# names the root cause (from chatpulse_service_cause). The rules' `for:` and
# Alertmanager's waits are shortened for the test; nothing else is changed.
source "$(dirname "$0")/lib.sh"

PROM_PORT=$(free_port)
AM_PORT=$(free_port)
SMTP_PORT=$(free_port)
start_knot
for v in ams nyc sin; do
  knotc -c "$KNOT_CONF" zone-begin chat.test >/dev/null
  knotc -c "$KNOT_CONF" zone-set chat.test "$v" 60 A 192.0.2.20 >/dev/null
  knotc -c "$KNOT_CONF" zone-commit chat.test >/dev/null
done
mkdir -p "$WORK/mail/tmp" "$WORK/mail/new" "$WORK/mail/cur"
spawn aiosmtpd /usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$WORK/mail"
smtp_ready() { /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $SMTP_PORT), 1)"; }
wait_until "aiosmtpd listening" 20 smtp_ready

# Three vantage points; each asks knot for its own name, so the test can
# break one vantage point's view at a time.
declare -A PORT
targets=""
for v in ams nyc sin; do
  PORT[$v]=$(free_port)
  cat >"$WORK/$v.toml" <<CONF
[monitor]
vantage = "$v"
interval = "300ms"
timeout = "250ms"
fail_after = 2
recover_after = 2
[server]
listen = "127.0.0.1:${PORT[$v]}"
[storage]
path = "$WORK/$v.db"
[[service]]
id = "whatsapp"
name = "WhatsApp"
  [[service.probe]]
  kind = "dns"
  query = "$v.chat.test"
  server = "127.0.0.1:$DNS_PORT"
CONF
  start_chatpulse "$WORK/$v.toml" "${PORT[$v]}"
  targets="$targets\"127.0.0.1:${PORT[$v]}\","
done

sed -e 's/for: 1m/for: 2s/' "$ROOT/dashboards/alerts.yml" >"$WORK/alerts.yml"
cat >"$WORK/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $WORK/alerts.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$AM_PORT"]
scrape_configs:
  - job_name: chatpulse
    static_configs:
      - targets: [${targets%,}]
CONF
# The shipped routing, delivering to aiosmtpd (the pager receiver too).
/usr/bin/python3 - "$ROOT/deploy/alertmanager.yml" "$WORK/alertmanager.yml" "$SMTP_PORT" <<'PY'
import sys
text = open(sys.argv[1]).read()
text = text.replace('smtp_smarthost: "smtp.example.org:587"', f'smtp_smarthost: "127.0.0.1:{sys.argv[3]}"\n  smtp_require_tls: false')
text = text.replace('  smtp_auth_username: "alertmanager"\n', '').replace('  smtp_auth_password_file: "/etc/alertmanager/smtp-password"\n', '')
text = text.replace('group_wait: 30s', 'group_wait: 1s').replace('group_interval: 5m', 'group_interval: 2s')
text = text.replace('''    webhook_configs:
      - url: "https://pager.example.org/hooks/chatpulse"
        send_resolved: true''', '''    email_configs:
      - to: "pager@example.org"''')
open(sys.argv[2], 'w').write(text)
PY
amtool check-config "$WORK/alertmanager.yml" >"$WORK/amtool.log" 2>&1 || fail "amtool: $(cat "$WORK/amtool.log")"
spawn alertmanager prometheus-alertmanager --config.file="$WORK/alertmanager.yml" --storage.path="$WORK/am" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address=
wait_until "alertmanager ready" 30 curl -sf "http://127.0.0.1:$AM_PORT/-/ready"
spawn prometheus prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT"
query() { curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1"; }
all_up() { [ "$(query 'count(chatpulse_service_up == 1)' | jq -r '.data.result[0].value[1]')" = "3" ]; }
wait_until "Prometheus sees WhatsApp up from three vantage points" 60 all_up

break_view() {
  knotc -c "$KNOT_CONF" zone-begin chat.test >/dev/null
  knotc -c "$KNOT_CONF" zone-unset chat.test "$1" A >/dev/null
  knotc -c "$KNOT_CONF" zone-commit chat.test >/dev/null
}
mail_to() { grep -l "^To: $1" "$WORK/mail/new"/* 2>/dev/null | head -1; }
alert_firing() { curl -sf "http://127.0.0.1:$AM_PORT/api/v2/alerts" | jq -e --arg n "$1" 'map(select(.labels.alertname == $n)) | length > 0' >/dev/null; }

log "ams alone sees WhatsApp down"
break_view ams
wait_until "ChatpulseServiceDown from ams reaches Alertmanager" 60 alert_firing ChatpulseServiceDown
wait_until "its e-mail to the on-call" 60 mail_to oncall@example.org
alert_firing ChatpulseServiceDownQuorum && fail "one vantage point must not page"
[ -z "$(mail_to pager@example.org)" ] || fail "one vantage point must not page"
log "ok: one vantage point: an e-mail, no page"
[ "$(curl -sf "http://127.0.0.1:$AM_PORT/api/v2/alerts" | jq -r 'map(select(.labels.alertname == "ChatpulseServiceDown"))[0].labels.vantage')" = ams ] \
  || fail "ChatpulseServiceDown does not name its vantage point from chatpulse_build_info{vantage}"
log "ok: the alert names its vantage point (ams), not its scrape address"

# Every dashboard query, as Grafana sends it with every vantage point
# selected, against this real Prometheus: ams sees WhatsApp down, nyc and
# sin see it up.
grafana() { local q=${1//\$vantage/.*}; query "${q//\$__rate_interval/1m}"; }
panel_expr() { jq -r --arg t "$1" '.panels[] | select(.title == $t) | .targets[0].expr' "$ROOT/dashboards/chatpulse.json"; }
n=0
while IFS= read -r expr; do
  [ "$(grafana "$expr" | jq -r .status)" = success ] || fail "Prometheus refuses a dashboard query: $expr"
  n=$((n + 1))
done < <(jq -r '.panels[].targets[].expr, (.templating.list[] | select(.type == "query") | .query | select(startswith("label_values") | not))' "$ROOT/dashboards/chatpulse.json")
log "ok: Prometheus evaluates all $n dashboard queries"
vantages=$(curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/label/vantage/values" | jq -r '.data | join(" ")')
[ "$vantages" = "ams nyc sin" ] || fail "the vantage variable would offer: $vantages"
status=$(grafana "$(panel_expr "Service status")" | jq -r '[.data.result[] | "\(.metric.service)@\(.metric.vantage)=\(.value[1])"] | sort | join(" ")')
[ "$status" = "whatsapp@ams=3 whatsapp@nyc=1 whatsapp@sin=1" ] \
  || fail "Service status must show one row per vantage point (3 down, 1 up), never a sum: $status"
down=$(grafana "$(panel_expr "Services down")" | jq -r '.data.result[0].value[1]')
[ "$down" = 1 ] || fail "Services down counts distinct services, got $down"
seen=$(grafana "$(panel_expr "Consensus: vantage points seeing each service down")" | jq -r '.data.result[0].value[1]')
[ "$seen" = 1 ] || fail "the consensus row says $seen vantage points see WhatsApp down, not 1"
why=$(grafana "$(panel_expr "Why: root cause per service and vantage point")" | jq -r '[.data.result[] | "\(.metric.vantage) \(.metric.layer) \(.metric.reason)"] | join(";")')
[ "$why" = "ams dns dns_nxdomain" ] || fail "the Why panel says: $why"
log "ok: the dashboard shows whatsapp down at ams and up at nyc and sin, 1 service down, why: $why"

log "nyc sees it down too"
break_view nyc
wait_until "ChatpulseServiceDownQuorum fires" 60 alert_firing ChatpulseServiceDownQuorum
wait_until "the page" 60 mail_to pager@example.org
page=$(mail_to pager@example.org)
/usr/bin/python3 - "$page" >"$WORK/page.txt" <<'PY'
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], 'rb'))
for part in m.walk():
    if part.get_content_type() in ('text/plain', 'text/html'):
        print(part.get_payload(decode=True).decode('utf-8', 'replace'))
PY
grep -q "dns: dns_nxdomain (2 vantage points)" "$WORK/page.txt" || fail "the page does not name the cause: $(head -c 3000 "$WORK/page.txt")"
log "ok: the page names the root cause: dns: dns_nxdomain (2 vantage points)"
log "PASS"
