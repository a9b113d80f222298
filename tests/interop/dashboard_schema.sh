#!/usr/bin/env bash
# dashboards/chatpulse.json validates against Grafana's published schema:
# npm @grafana/schema's Dashboard type, checked by tsc --noEmit --strict.
source "$(dirname "$0")/lib.sh"
npm_tools
cd "$NODE_TOOLS"
check=dashboard.check.ts
{ echo "import type { Dashboard } from '@grafana/schema';"; printf 'export const dashboard = ('; cat "$ROOT/dashboards/chatpulse.json"; echo ') satisfies Dashboard;'; } >"$check"
trap 'rm -f "$NODE_TOOLS/$check"; cleanup' EXIT
npx --no-install tsc --noEmit --strict --skipLibCheck --module nodenext --moduleResolution nodenext --target es2022 "$check" \
  || fail "dashboards/chatpulse.json does not satisfy @grafana/schema's Dashboard"
log "ok: dashboards/chatpulse.json satisfies Dashboard (@grafana/schema $(node -p "require('@grafana/schema/package.json').version"))"
log "PASS"
