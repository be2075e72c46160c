#!/usr/bin/env bash
# Deploys to Kubernetes every service whose deployed version differs from its last relevant
# commit, one service at a time, waiting for each rollout.
#
#   scripts/delivery/deploy.sh [--dry-run] [--kind <cluster>] [--build] [--with-postgres] [--with-unleash]
#                     [--namespace <ns>] [--timeout <duration>] [service...]
#
# The cluster is kubectl's current context (KUBECONFIG). A Deployment records the version of its
# last *completed* rollout in the annotation toasties-galore/deployed-version, so a failed rollout
# (rolled back here) is retried by the next deploy, and an unchanged service is left alone.
#   --dry-run         print what would be deployed and the commands, change nothing
#   --kind <cluster>  a kind cluster: images are loaded into its nodes (kind load docker-image)
#                     instead of pulled by them; implies --with-postgres
#   --build           build the images locally (docker build) instead of pulling them
#   --with-postgres   also run the throwaway PostgreSQL of deploy/k8s/postgres.yaml
#   --with-unleash    also run the Unleash server of deploy/k8s/unleash.yaml for jafflr's flags
#   --namespace <ns>  default toasties
#   --timeout <d>     how long one rollout may take, default 300s
#   service...        consider only these (default: every service)
# Environment: IMAGE_REPOSITORY, DOCKER, KUBECTL, KIND (see scripts/delivery/lib/delivery.sh).
set -euo pipefail
# shellcheck source=scripts/delivery/lib/delivery.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/delivery.sh"

namespace=toasties
kind_cluster=""
build=false
with_postgres=false
with_unleash=false
timeout=300s
only=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --kind)
      [[ $# -ge 2 ]] || die "--kind needs a cluster name"
      kind_cluster="$2"
      with_postgres=true
      shift
      ;;
    --build) build=true ;;
    --with-postgres) with_postgres=true ;;
    --with-unleash) with_unleash=true ;;
    --namespace)
      [[ $# -ge 2 ]] || die "--namespace needs a name"
      namespace="$2"
      shift
      ;;
    --timeout)
      [[ $# -ge 2 ]] || die "--timeout needs a duration (e.g. 300s)"
      timeout="$2"
      shift
      ;;
    *) common_arg "$1" ;;
  esac
  shift
done

if [[ "$build" == true && -z "$kind_cluster" ]]; then
  die "--build needs --kind: a real cluster pulls the images scripts/delivery/publish.sh pushed"
fi

manifests="$REPO/deploy/k8s"
repository="$(image_repository)"
versions="$(all_versions)"
if [[ ${#only[@]} -gt 0 ]]; then
  check_services "$versions" "${only[@]}"
  versions="$(echo "$versions" | grep -E "^($(IFS='|'; echo "${only[*]}")) ")"
fi
KCTL=("$KUBECTL" --namespace "$namespace")
ANNOTATION=toasties-galore/deployed-version

reachable=true
if ! have "$KUBECTL" || ! "$KUBECTL" version --request-timeout=10s >/dev/null 2>&1; then
  [[ "$DRY_RUN" == true ]] || die "no cluster reachable with $KUBECTL (check KUBECONFIG / the current context)"
  reachable=false
fi
if [[ "$reachable" == true ]]; then
  target="context $("$KUBECTL" config current-context 2>/dev/null || echo '(in-cluster)')"
else
  target="no reachable cluster; assuming nothing is deployed"
fi
echo "deploy to namespace $namespace, $target$([[ "$DRY_RUN" == true ]] && echo ' (dry run)')"
[[ -n "$kind_cluster" ]] && echo "kind cluster $kind_cluster: images are loaded into its nodes"

deployed_version() {
  [[ "$reachable" == true ]] || return 0
  "${KCTL[@]}" get deployment "$1" -o "jsonpath={.metadata.annotations.$ANNOTATION}" 2>/dev/null || true
}

# Decide first, then act: the plan is the output of a dry run.
plan=()
while read -r service version <&3; do
  [[ -z "$service" ]] && continue
  current="$(deployed_version "$service")"
  if [[ "$current" == "$version" ]]; then
    echo "$service: $version is deployed, nothing to do"
  else
    echo "$service: deployed ${current:-nothing}, last relevant commit $version -> deploy"
    plan+=("$service $version")
  fi
done 3<<<"$versions"
if [[ ${#plan[@]} -eq 0 ]]; then
  echo "nothing to deploy"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The manifest with its placeholders filled in; refuses to apply one that still has any.
render() {
  local file="$1" version="$2" out
  out="$work/$(basename "$1")"
  sed -e "s|__IMAGE_REPOSITORY__|$repository|g" -e "s|__VERSION__|$version|g" "$file" >"$out"
  if grep -n '__[A-Z_]*__' "$out" >&2; then die "unfilled placeholder in $file"; fi
  echo "$out"
}

# Applies deploy/k8s/<name>.yaml with the placeholders filled in.
apply_manifest() {
  local name="$1" version="$2" rendered
  rendered="$(render "$manifests/$name.yaml" "$version")"
  echo "  apply deploy/k8s/$name.yaml$([[ "$version" != - ]] && echo " at $version")"
  run "${KCTL[@]}" apply -f "$rendered"
  sed -n 's/^ *image: /    image /p' "$rendered" | sort -u
}

# A random admin token for chillybin's restock endpoint, created once and never printed.
ensure_admin_token() {
  if [[ "$reachable" == true ]] && "${KCTL[@]}" get secret chillybin-admin >/dev/null 2>&1; then
    return
  fi
  echo "  create Secret chillybin-admin with a random CHILLYBIN_ADMIN_TOKEN (absent so far)"
  local token_file="$work/CHILLYBIN_ADMIN_TOKEN"
  od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$token_file"
  run "${KCTL[@]}" create secret generic chillybin-admin --from-file="CHILLYBIN_ADMIN_TOKEN=$token_file"
}

require_secret() {
  local name="$1" hint="$2"
  if [[ "$with_postgres" == true ]]; then return; fi # postgres.yaml provides it
  if [[ "$reachable" == true ]] && ! "${KCTL[@]}" get secret "$name" >/dev/null 2>&1; then
    die "Secret $name is missing in namespace $namespace; create it first: $hint"
  fi
}

echo "shared resources"
run "$KUBECTL" apply -f "$manifests/namespace.yaml"
if [[ "$with_postgres" == true ]]; then
  apply_manifest postgres -
  run "${KCTL[@]}" rollout status deployment/postgres --timeout="$timeout"
fi
if [[ "$with_unleash" == true ]]; then
  apply_manifest unleash -
  run "${KCTL[@]}" rollout status deployment/unleash --timeout="$timeout"
fi

# Name order puts chillybin (the provider) before jafflr (its caller).
for entry in "${plan[@]}"; do
  service="${entry%% *}"
  version="${entry#* }"
  image="$repository/$service:$version"
  manifest="$manifests/$service.yaml"
  [[ -f "$manifest" ]] || die "no manifest for $service at ${manifest#"$REPO"/}"
  echo "$service: deploy $image"

  if [[ -n "$kind_cluster" ]]; then
    if [[ "$build" == true ]]; then
      build_image "$service" "$version" "$image"
    else
      run "$DOCKER" pull "$image"
    fi
    run "$KIND" load docker-image "$image" --name "$kind_cluster"
  fi

  if [[ "$service" == chillybin ]]; then
    require_secret chillybin-db \
      "kubectl -n $namespace create secret generic chillybin-db --from-literal=DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/DB"
    ensure_admin_token
  fi

  apply_manifest "$service" "$version"
  if ! run "${KCTL[@]}" rollout status "deployment/$service" --timeout="$timeout"; then
    echo "$service: rollout failed; pods and recent logs:" >&2
    "${KCTL[@]}" get pods -l "app.kubernetes.io/name=$service" -o wide >&2 || true
    "${KCTL[@]}" logs -l "app.kubernetes.io/name=$service" --all-containers --prefix --tail=40 >&2 || true
    "${KCTL[@]}" rollout undo "deployment/$service" >&2 || true
    die "$service $version did not become ready within $timeout; rolled back"
  fi
  run "${KCTL[@]}" annotate "deployment/$service" "$ANNOTATION=$version" --overwrite
done

names="$(for entry in "${plan[@]}"; do printf '%s ' "${entry%% *}"; done | sed 's/ $//')"
if [[ "$DRY_RUN" == true ]]; then
  echo "would deploy: $names (dry run: nothing changed)"
else
  echo "deployed: $names"
fi
