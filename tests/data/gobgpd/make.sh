#!/usr/bin/env bash
# Makes the gobgpd MRT samples in this directory (run by hand, not by CI;
# needs gobgpd, gobgp and bgpdump from Debian). Three gobgpd speakers on
# loopback: A (AS 4200000001, a 4-byte AS, from 127.0.0.2) and B (AS 65002,
# from 127.0.0.3) announce IPv4 and IPv6 routes to D (AS 65010 on
# 127.0.0.10), which learns them from real neighbours and writes a
# TABLE_DUMP_V2 RIB dump every 60 s (to one file, rewritten) and its
# received UPDATEs as BGP4MP (the file name is a Go time layout).
# Each file's reference is `bgpdump -m FILE` beside it (FILE.bgp).
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PD=$(port); AA=$(port); AB=$(port); AD=$(port)

# The two address families every session carries (ends a neighbour).
families() {
  cat <<CONF
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
CONF
}

# d_neighbor ADDRESS AS: a passive neighbour of D, both families.
d_neighbor() {
  cat <<CONF
[[neighbors]]
  [neighbors.config]
    neighbor-address = "$1"
    peer-as = $2
  [neighbors.transport.config]
    local-address = "127.0.0.10"
    passive-mode = true
CONF
  families
}

{
cat <<CONF
[global.config]
  as = 65010
  router-id = "127.0.0.10"
  port = $PD
  local-address-list = ["127.0.0.10"]
CONF
d_neighbor 127.0.0.2 4200000001
d_neighbor 127.0.0.3 65002
cat <<CONF
[[mrt-dump]]
  [mrt-dump.config]
    dump-type = "table"
    file-name = "$work/rib.20060102.150405"
    dump-interval = 60
[[mrt-dump]]
  [mrt-dump.config]
    dump-type = "updates"
    file-name = "$work/updates.20060102.150405"
    rotation-interval = 600
CONF
} >"$work/d.toml"

speaker() { # name as address
  {
  cat <<CONF
[global.config]
  as = $2
  router-id = "$3"
  port = -1
  local-address-list = ["$3"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.10"
    peer-as = 65010
  [neighbors.transport.config]
    remote-port = $PD
    local-address = "$3"
  [neighbors.timers.config]
    connect-retry = 1
CONF
  families
  } >"$work/$1.toml"
}
speaker a 4200000001 127.0.0.2
speaker b 65002 127.0.0.3

gobgpd -f "$work/d.toml" -p --api-hosts="127.0.0.1:$AD" --pprof-disable >"$work/d.log" 2>&1 &
# D sets up its MRT writers after reading its config: the speakers start
# once it answers, or their first UPDATEs can miss the updates dump.
for _ in $(seq 50); do gobgp -p "$AD" global >/dev/null 2>&1 && break; sleep 0.2; done
sleep 1
gobgpd -f "$work/a.toml" -p --api-hosts="127.0.0.1:$AA" --pprof-disable >"$work/a.log" 2>&1 &
gobgpd -f "$work/b.toml" -p --api-hosts="127.0.0.1:$AB" --pprof-disable >"$work/b.log" 2>&1 &
for _ in $(seq 60); do
  [ "$(gobgp -p "$AD" neighbor 2>/dev/null | grep -c Establ)" = 2 ] && break
  sleep 1
done
gobgp -p "$AD" neighbor

add() { gobgp -p "$1" global rib add "${@:2}" >/dev/null; }
add "$AA" 129.134.30.0/23 nexthop 192.0.2.2 origin igp aspath 4200000001,32934 -a ipv4
add "$AA" 129.134.0.0/17 nexthop 192.0.2.2 origin igp aspath 4200000001,32934 -a ipv4
add "$AA" 2a03:2880:f0fc::/47 nexthop 2001:db8::2 origin igp aspath 4200000001,32934 -a ipv6
add "$AB" 129.134.30.0/23 nexthop 192.0.2.3 origin igp aspath 65002,32934 -a ipv4
add "$AB" 149.154.160.0/22 nexthop 192.0.2.3 origin igp aspath 65002,62041 -a ipv4
add "$AB" 2001:67c:4e8::/48 nexthop 2001:db8::3 origin igp aspath 65002,62041 -a ipv6
sleep 2
gobgp -p "$AB" global rib del 149.154.160.0/22 -a ipv4 >/dev/null
echo "waiting for a table dump after the routes (gobgpd dumps at start, then every 60 s)"
sleep 65
# gobgpd does not always write the updates dump (about one run in two here,
# cause not found): say so rather than copy half a sample.
ls "$work"/updates.* >/dev/null 2>&1 || { echo "gobgpd wrote no updates dump this time; run again" >&2; exit 1; }
rib=$(ls "$work"/rib.* | tail -1)
updates=$(ls "$work"/updates.* | head -1)
cp "$rib" "$out/gobgpd_rib"
cp "$updates" "$out/gobgpd_updates"
for f in gobgpd_rib gobgpd_updates; do bgpdump -m "$out/$f" >"$out/$f.bgp"; done
wc -l "$out"/*.bgp
