#!/usr/bin/env bash
# What is live, kept by GitHub: every deploy is a GitHub deployment in an environment, its payload
# holding the versions it ran.
#   deployments.sh last <environment>      "<service> <version>" lines of the newest deployment whose
#                                          latest status is success; nothing on a fork's first deploy
#   deployments.sh record <environment> <success|failure>   records HEAD, its versions, the pipeline's
# Needs gh with a token that may read and write deployments (GH_TOKEN; permissions deployments:
# write). The repository is GITHUB_REPOSITORY, else the `origin` remote. GH: the binary (gh).
set -euo pipefail
# shellcheck source=scripts/delivery/lib/delivery.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/delivery.sh"
GH="${GH:-gh}"

command="${1:-}"
environment="${2:-}"
[[ "$environment" =~ ^[A-Za-z0-9_.-]+$ ]] ||
  die "usage: deployments.sh last <environment> | record <environment> <success|failure>"
slug="$(github_slug)"
[[ -n "$slug" ]] || die "no GitHub repository: set GITHUB_REPOSITORY=owner/name"
api="repos/$slug/deployments"

case "$command" in
  last)
    # Newest first, as the API lists them; their statuses newest first too.
    for id in $("$GH" api "$api?environment=$environment&per_page=30" --jq '.[].id'); do
      state="$("$GH" api "$api/$id/statuses?per_page=1" --jq '.[0].state // ""')"
      if [[ "$state" == success ]]; then
        "$GH" api "$api/$id" --jq '.payload.versions // {} | to_entries[] | "\(.key) \(.value)"' |
          grep -E '^[a-z0-9-]+ [0-9a-f]{40}$' || true
        exit 0
      fi
    done
    ;;
  record)
    state="${3:-}"
    [[ "$state" == success || "$state" == failure ]] || die "record needs success or failure"
    sha="$(git -C "$REPO" rev-parse HEAD)"
    versions="$("$DELIVERY/last-commit" --all | awk '{ printf "%s\"%s\":\"%s\"", (NR > 1 ? "," : ""), $1, $2 }')"
    body="$(mktemp)"
    trap 'rm -f "$body"' EXIT
    # required_contexts: [] — CI has already judged this commit; auto_merge: false — never merge.
    printf '{"ref":"%s","environment":"%s","auto_merge":false,"required_contexts":[],"description":"toasties-galore deploy","payload":{"versions":{%s}}}' \
      "$sha" "$environment" "$versions" >"$body"
    id="$("$GH" api "$api" --method POST --input "$body" --jq '.id')"
    [[ "$id" =~ ^[0-9]+$ ]] || die "GitHub did not create a deployment: $id"
    run_url="${GITHUB_SERVER_URL:-https://github.com}/$slug/actions/runs/${GITHUB_RUN_ID:-}"
    description="versions: ${versions//\"/}"
    printf '{"state":"%s","log_url":"%s","description":"%s"}' "$state" \
      "$([[ -n "${GITHUB_RUN_ID:-}" ]] && echo "$run_url")" "${description:0:140}" >"$body"
    "$GH" api "$api/$id/statuses" --method POST --input "$body" --jq '.state' >/dev/null
    echo "recorded deployment $id of $sha in $environment: $state"
    ;;
  *) die "usage: deployments.sh last <environment> | record <environment> <success|failure>" ;;
esac
