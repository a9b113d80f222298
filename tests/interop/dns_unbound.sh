#!/usr/bin/env bash
# chatpulse against Unbound (Debian's, built with nghttp2) in front of Knot
# DNS: DNS over TLS and DNS over HTTPS answer, verified against a private CA
# through ca_file; asked without recursion, Unbound's answer for chat.test
# (from its cache, not from the zone) lacks the AA flag and chatpulse says
# dns_not_authoritative, while Knot asked directly is authoritative.
source "$(dirname "$0")/lib.sh"

command -v unbound >/dev/null || fail "unbound is not installed (Debian package unbound)"
HTTP_PORT=$(free_port)
UB_PORT=$(free_port)
DOT_PORT=$(free_port)
DOH_PORT=$(free_port)
start_knot

log "a private CA and a certificate for localhost"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=chatpulse interop CA" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>"$WORK/openssl.log"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
  -keyout "$WORK/leaf.key" -out "$WORK/leaf.csr" 2>>"$WORK/openssl.log"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$WORK/leaf.ext"
openssl x509 -req -in "$WORK/leaf.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial -days 30 \
  -extfile "$WORK/leaf.ext" -out "$WORK/leaf.pem" 2>>"$WORK/openssl.log"

cat >"$WORK/unbound.conf" <<CONF
server:
    interface: 127.0.0.1@$UB_PORT
    interface: 127.0.0.1@$DOT_PORT
    interface: 127.0.0.1@$DOH_PORT
    tls-port: $DOT_PORT
    https-port: $DOH_PORT
    tls-service-key: "$WORK/leaf.key"
    tls-service-pem: "$WORK/leaf.pem"
    http-endpoint: "/dns-query"
    do-daemonize: no
    use-syslog: no
    logfile: ""
    verbosity: 1
    username: ""
    chroot: ""
    directory: "$WORK"
    pidfile: ""
    access-control: 127.0.0.0/8 allow_snoop   # answer non-recursive queries from the cache
    do-not-query-localhost: no
    module-config: "iterator"
    domain-insecure: "chat.test"
    local-zone: "test." nodefault
stub-zone:
    name: "chat.test"
    stub-addr: 127.0.0.1@$DNS_PORT
CONF
unbound-checkconf "$WORK/unbound.conf" >"$WORK/checkconf.log" 2>&1 || fail "unbound-checkconf: $(cat "$WORK/checkconf.log")"
spawn unbound unbound -d -c "$WORK/unbound.conf"
unbound_answers() { kdig +timeout=1 +retry=0 @127.0.0.1 -p "$UB_PORT" web.chat.test A | grep -q "192.0.2.10"; }
wait_until "unbound answering from knot" 20 unbound_answers

{
  config_header "$HTTP_PORT"
  cat <<CONF
[[service]]
id = "encrypted"
name = "Encrypted DNS"
  [[service.probe]]
  kind = "dns"
  id = "dot"
  query = "web.chat.test"
  transport = "tls"
  server = "127.0.0.1:$DOT_PORT"
  server_name = "localhost"
  ca_file = "$WORK/ca.pem"
  [[service.probe]]
  kind = "dns"
  id = "doh"
  query = "web.chat.test"
  transport = "https"
  server = "https://localhost:$DOH_PORT/dns-query"
  ca_file = "$WORK/ca.pem"
[[service]]
id = "authority"
name = "Authority"
  [[service.probe]]
  kind = "dns"
  id = "knot"
  query = "web.chat.test"
  server = "127.0.0.1:$DNS_PORT"
  recursion = false
  [[service.probe]]
  kind = "dns"
  id = "unbound"
  query = "web.chat.test"
  server = "127.0.0.1:$UB_PORT"
  recursion = false
CONF
} >"$WORK/config.toml"

start_chatpulse "$WORK/config.toml" "$HTTP_PORT"
wait_until "DNS over TLS answers" 20 probe_result_is encrypted dot ok
wait_until "DNS over HTTPS answers" 20 probe_result_is encrypted doh ok
wait_until "encrypted up" 20 service_is encrypted up
wait_until "knot asked directly is authoritative" 20 probe_result_is authority knot ok
unbound_probes() { curl -sf "$CP_URL/api/v1/services" | jq -c '.services[] | select(.id=="authority") | .probes'; }
if ! ( wait_until "unbound's cached answer is not authoritative" 20 probe_result_is authority unbound dns_not_authoritative ); then
  fail "unbound probe: $(unbound_probes); kdig: $(kdig +norec @127.0.0.1 -p "$UB_PORT" web.chat.test A 2>&1 | head -20)"
fi
detail=$(curl -sf "$CP_URL/api/v1/services" | jq -r '.services[] | select(.id=="authority") | .probes[] | select(.id=="unbound") | .target')
log "ok: $detail"
wait_until "authority degraded, not down (knot still answers)" 20 service_is authority degraded
log "PASS"
