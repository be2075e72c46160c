#!/usr/bin/env bash
# The post-deploy check deploy.sh --verify runs, reaching the services through kubectl
# port-forward (NAMESPACE, default toasties):
#   verify.sh smoke   the smoke suite (smoke/*.test.ts): changes no business state and calls no v1
#                     (the foxtrot's counts stay the customers'), so safe in production
#   verify.sh full    then the integration suite against JAFFLR_URL/CHILLYBIN_URL (it orders
#                     toasties and restocks): throwaway clusters only
set -euo pipefail
# shellcheck source=scripts/delivery/lib/delivery.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/delivery.sh"

mode="${1:-}"
[[ "$mode" == smoke || "$mode" == full ]] || die "usage: verify.sh smoke|full"
namespace="${NAMESPACE:-toasties}"
work="$(mktemp -d)"
forwards=()
cleanup() {
  for pid in "${forwards[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Forwards a free local port to the Service (one of its pods: after a rollout, all run the new
# version) and sets forwarded_port.
forward() {
  local service="$1" port="$2" log="$work/forward-$1.log" tries=0
  : >"$log"
  "$KUBECTL" --namespace "$namespace" port-forward "service/$service" ":$port" >"$log" 2>&1 &
  forwards+=($!)
  forwarded_port=""
  until [[ -n "$forwarded_port" ]]; do
    forwarded_port="$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$log" | head -1)"
    [[ $((++tries)) -le 100 ]] || die "port-forward to $service did not start: $(cat "$log")"
    [[ -n "$forwarded_port" ]] || sleep 0.2
  done
}

forward jafflr 7000
export JAFFLR_URL="http://127.0.0.1:$forwarded_port"
forward chillybin 7001
export CHILLYBIN_URL="http://127.0.0.1:$forwarded_port"
while read -r service version; do # EXPECT_JAFFLR_VERSION, EXPECT_CHILLYBIN_VERSION
  export "EXPECT_$(tr '[:lower:]' '[:upper:]' <<<"$service")_VERSION=$version"
done < <(all_versions)

echo "verify ($mode): jafflr at $JAFFLR_URL, chillybin at $CHILLYBIN_URL"
(cd "$DELIVERY" && node --import tsx --test smoke/*.test.ts)

if [[ "$mode" == full ]]; then
  CHILLYBIN_ADMIN_TOKEN="$("$KUBECTL" --namespace "$namespace" get secret chillybin-admin \
    -o 'jsonpath={.data.CHILLYBIN_ADMIN_TOKEN}' | base64 -d)"
  [[ -n "${GITHUB_ACTIONS:-}" ]] && echo "::add-mask::$CHILLYBIN_ADMIN_TOKEN"
  export CHILLYBIN_ADMIN_TOKEN
  (cd "$REPO" && npx turbo run build --filter=integration-tests... --output-logs=errors-only)
  (cd "$REPO" && npm test -w integration-tests)
fi
