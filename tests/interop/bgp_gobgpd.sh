#!/usr/bin/env bash
# chatpulse's BGP speaker against a real gobgpd: gobgpd (AS 65001, from
# 127.0.0.2) peers with chatpulse on a high loopback port and announces
# 129.134.30.0/23 and the covering 129.134.0.0/17 with AS path 32934, and an
# IPv6 prefix; `gobgp global rib del` of the /23 makes the probe
# bgp_invisible (the /17 still routed does not count: 4 October 2021) and
# the service's root cause bgp; re-announcing recovers it; a more-specific
# /24 from AS666 is bgp_more_specific. With VRPs written in rpki-client's
# -j format, Telegram's probe (no origin list, [bgp] rpki) is ok for the
# valid route and bgp_rpki_invalid for gobgpd's invalid-origin and
# invalid-length more-specifics.
source "$(dirname "$0")/lib.sh"

BGP_PORT=$(free_port)
HTTP_PORT=$(free_port)
API_PORT=$(free_port)

cat >"$WORK/gobgpd.toml" <<CONF
[global.config]
  as = 65001
  router-id = "127.0.0.2"
  port = -1
  local-address-list = ["127.0.0.2"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 65010
  [neighbors.transport.config]
    remote-port = $BGP_PORT
    local-address = "127.0.0.2"
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
CONF

cat >"$WORK/config.toml" <<CONF
[monitor]
interval = "1s"
timeout = "500ms"
fail_after = 1
recover_after = 1

[server]
listen = "127.0.0.1:$HTTP_PORT"

[storage]
path = "$WORK/history.db"

[bgp]
source = "session"
rpki = "vrps.json"
[bgp.session]
listen = "127.0.0.1:$BGP_PORT"
local_as = 65010
router_id = "192.0.2.10"
  [[bgp.session.peer]]
  address = "127.0.0.2"
  remote_as = 65001

[[service]]
id = "facebook"
name = "Facebook"
  [[service.probe]]
  kind = "bgp"
  id = "dns-prefix"
  prefix = "129.134.30.0/23"
  origin = 32934
  [[service.probe]]
  kind = "bgp"
  id = "dns-prefix-v6"
  prefix = "2a03:2880:f0fc::/47"
  origin = 32934

[[service]]
id = "telegram"
name = "Telegram"
  [[service.probe]]
  kind = "bgp"
  id = "dc-rpki"
  prefix = "149.154.160.0/22"
  more_specifics = true
CONF
cat >"$WORK/vrps.json" <<'JSON'
{
	"metadata": { "buildmachine": "interop", "buildtime": "2026-12-02T00:00:00Z", "roas": 1, "vrps": 1 },
	"roas": [
		{ "asn": 62041, "prefix": "149.154.160.0/22", "maxLength": 23, "ta": "ripe", "expires": 1900000000 }
	]
}
JSON

start_chatpulse "$WORK/config.toml" "$HTTP_PORT"
spawn gobgpd gobgpd -f "$WORK/gobgpd.toml" -p --api-hosts="127.0.0.1:$API_PORT" --pprof-disable
gobgp_cli() { gobgp -p "$API_PORT" "$@"; }
established() { gobgp_cli neighbor 2>/dev/null | grep -q Establ; }
wait_until "gobgpd's session with chatpulse established" 60 established
feed_up() { curl -sf "$CP_URL/metrics" | grep -q '^chatpulse_bgp_feed_up{source="session"} 1'; }
wait_until "chatpulse_bgp_feed_up 1" 20 feed_up

log "announcing 129.134.30.0/23, the covering 129.134.0.0/17 and 2a03:2880:f0fc::/47 with AS path 32934"
gobgp_cli global rib add 129.134.30.0/23 nexthop 192.0.2.1 origin igp aspath 32934 -a ipv4 >/dev/null
gobgp_cli global rib add 129.134.0.0/17 nexthop 192.0.2.1 origin igp aspath 32934 -a ipv4 >/dev/null
gobgp_cli global rib add 2a03:2880:f0fc::/47 nexthop 2001:db8::1 origin igp aspath 32934 -a ipv6 >/dev/null
wait_until "probe ok" 20 probe_result_is facebook dns-prefix ok
wait_until "IPv6 probe ok" 20 probe_result_is facebook dns-prefix-v6 ok
wait_until "facebook up" 20 service_is facebook up

log "withdrawing the /23 while the /17 stays routed"
gobgp_cli global rib del 129.134.30.0/23 -a ipv4 >/dev/null
wait_until "probe bgp_invisible" 20 probe_result_is facebook dns-prefix bgp_invisible
wait_until "facebook degraded" 20 service_is facebook degraded
cause=$(service_field facebook .cause.summary)
case "$cause" in
  "bgp: dns-prefix bgp_invisible — 129.134.30.0/23 seen by 0% of 1 peers (origin AS32934), 1 more only via 129.134.0.0/17 (not counted: covering = false)")
    log "ok: cause is \"$cause\"" ;;
  *) fail "root cause should be the BGP withdrawal, got \"$cause\"" ;;
esac

log "re-announcing"
gobgp_cli global rib add 129.134.30.0/23 nexthop 192.0.2.1 origin igp aspath 32934 -a ipv4 >/dev/null
wait_until "facebook up again" 20 service_is facebook up

log "a more-specific 129.134.30.0/24 from AS666 (a hijack)"
gobgp_cli global rib add 129.134.30.0/24 nexthop 192.0.2.1 origin igp aspath 666 -a ipv4 >/dev/null
wait_until "probe bgp_more_specific" 20 probe_result_is facebook dns-prefix bgp_more_specific
names_hijack() { service_field facebook .cause.summary | grep -qF "129.134.30.0/24, a more-specific of 129.134.30.0/23, originated by AS666"; }
wait_until "the cause names the offending /24" 20 names_hijack
log "ok: $(service_field facebook .cause.summary)"
gobgp_cli global rib del 129.134.30.0/24 -a ipv4 >/dev/null
wait_until "facebook up once the hijack is gone" 20 service_is facebook up
log "RPKI: 149.154.160.0/22 from AS62041 (valid)"
gobgp_cli global rib add 149.154.160.0/22 nexthop 192.0.2.1 origin igp aspath 62041 -a ipv4 >/dev/null
wait_until "RPKI probe ok on the valid route" 20 probe_result_is telegram dc-rpki ok
log "RPKI: 149.154.162.0/23 from AS666 (invalid origin)"
gobgp_cli global rib add 149.154.162.0/23 nexthop 192.0.2.1 origin igp aspath 666 -a ipv4 >/dev/null
wait_until "probe bgp_rpki_invalid (origin)" 20 probe_result_is telegram dc-rpki bgp_rpki_invalid
gobgp_cli global rib del 149.154.162.0/23 -a ipv4 >/dev/null
wait_until "RPKI probe ok again" 20 probe_result_is telegram dc-rpki ok
log "RPKI: 149.154.160.0/24 from AS62041 (longer than maxLength 23)"
gobgp_cli global rib add 149.154.160.0/24 nexthop 192.0.2.1 origin igp aspath 62041 -a ipv4 >/dev/null
wait_until "probe bgp_rpki_invalid (length)" 20 probe_result_is telegram dc-rpki bgp_rpki_invalid
gobgp_cli global rib del 149.154.160.0/24 -a ipv4 >/dev/null
wait_until "RPKI probe ok once the /24 is gone" 20 probe_result_is telegram dc-rpki ok
grep -q "refused a connection" "$WORK/chatpulse.log" && fail "chatpulse refused gobgpd"
log "PASS"
