#!/usr/bin/env bash
# Headless Chromium (Debian) loads the status page of a running chatpulse
# with one service down and the BGP feed down: the page shows that service,
# its state and cause; at 390 px there is no horizontal scroll; at 390 and
# 1280 px the feed banner is exactly as wide as the service cards and aligned
# with them; the service page shows the service, its state and its two
# charts; screenshots go to tests/interop/out/{status,service}-page-*.png.
source "$(dirname "$0")/lib.sh"
npm_tools

HTTP_PORT=$(free_port)
BROKEN_PORT=$(free_port)
BGP_PORT=$(free_port)
start_knot
{
  config_header "$HTTP_PORT" interop-phone
  # A BGP session nobody connects to: the feed stays down (a banner).
  printf '[bgp]\nsource = "session"\n[bgp.session]\nlisten = "127.0.0.1:%s"\nlocal_as = 65010\nrouter_id = "192.0.2.10"\n' "$BGP_PORT"
  printf '  [[bgp.session.peer]]\n  address = "127.0.0.2"\n  remote_as = 65001\n'
  dns_service whatsapp WhatsApp web.chat.test
  printf '  [[service.probe]]\n  kind = "bgp"\n  prefix = "129.134.30.0/23"\n'

  http_service signal Signal "http://127.0.0.1:$BROKEN_PORT/a/rather/long/path/that/must/wrap/on/a/phone/instead/of/scrolling"
} >"$WORK/config.toml"
start_chatpulse "$WORK/config.toml" "$HTTP_PORT"
wait_until "signal down" 20 service_is signal down
wait_until "whatsapp up" 20 service_is whatsapp up

shot="$OUT/status-page-390.png"
node "$NODE_TOOLS/status_page.mjs" "$CP_URL/" "$shot" >"$WORK/measured.json" 2>"$WORK/chromium.log" \
  || fail "Chromium could not load the status page: $(tail -5 "$WORK/chromium.log")"
m() { jq -r "$1" "$WORK/measured.json"; }
[ "$(m '.services[] | select(.id=="signal") | .state')" = "DOWN" ] || fail "signal not shown DOWN: $(cat "$WORK/measured.json")"
case "$(m '.services[] | select(.id=="signal") | .cause')" in
  "Root cause: http: http-1 http_connect — connection refused (http://127.0.0.1:$BROKEN_PORT/"*) log "ok: the cause is shown" ;;
  *) fail "no root cause for signal: $(m '.services[] | select(.id=="signal") | .cause')" ;;
esac
[ "$(m '.services[] | select(.id=="whatsapp") | .state')" = "UP" ] || fail "whatsapp not shown UP"
[ "$(m '.services[] | select(.id=="signal") | .bar')" = "90" ] || fail "no 90-day bar"
scroll=$(m .scrollWidth); client=$(m .clientWidth)
[ "$scroll" -le "$client" ] || fail "horizontal scroll at 390 px: scrollWidth $scroll > clientWidth $client"
log "ok: no horizontal scroll at 390 px (scrollWidth $scroll, clientWidth $client)"
[ -s "$shot" ] || fail "no screenshot"
log "ok: screenshot in $shot"

for width in 390 1280; do
  shot="$OUT/status-page-$width.png"
  node "$NODE_TOOLS/status_page.mjs" "$CP_URL/" "$shot" "$width" >"$WORK/measured-$width.json" 2>"$WORK/chromium.log" \
    || fail "Chromium could not load the status page at $width px"
  mw() { jq -r "$1" "$WORK/measured-$width.json"; }
  [ "$(mw '.banners | length')" -ge 1 ] || fail "no BGP feed banner at $width px"
  banner="$(mw '.banners[0] | "\(.left) \(.width)"')"
  card="$(mw '.services[0] | "\(.left) \(.width)"')"
  [ "$banner" = "$card" ] || fail "at $width px the banner (left width: $banner) is not aligned with the cards ($card)"
  [ "$(mw '.banners[0].left')" -ge 8 ] || fail "at $width px the banner touches the screen edge"
  log "ok: at $width px the banner is as wide as the cards (left width: $banner)"

  shot="$OUT/service-page-$width.png"
  node "$NODE_TOOLS/status_page.mjs" "$CP_URL/services/signal" "$shot" "$width" >"$WORK/service-$width.json" 2>"$WORK/chromium.log" \
    || fail "Chromium could not load the service page at $width px"
  ms() { jq -r "$1" "$WORK/service-$width.json"; }
  [ "$(ms '.services[0].state')" = "DOWN" ] || fail "the service page does not show Signal DOWN at $width px"
  ms '.text' | grep -q "Signal" || fail "the service page does not name Signal"
  [ "$(ms '.charts')" = "2" ] || fail "the service page has $(ms '.charts') charts at $width px, not 2"
  [ "$(ms .scrollWidth)" -le "$(ms .clientWidth)" ] || fail "horizontal scroll on the service page at $width px"
  log "ok: at $width px the service page shows Signal DOWN with its two charts ($shot)"
done
log "PASS"
