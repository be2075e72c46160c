#!/usr/bin/env bash
# Rolls out, one at a time, every service whose version differs from the one running (the
# Deployment's annotation toasties-galore/deployed-version, written once a rollout is proven),
# proves the rollout, and on failure gives each service it changed back every object of its
# previous version (a first deploy is deleted), with diagnostics.
#   scripts/delivery/deploy.sh [--dry-run | --plan] [--namespace <ns>] [--timeout <d>] [--verify <cmd>]
#       [--kind <cluster> [--build] [--baseline <file>]] [--with-postgres] [--with-unleash] [service...]
# --kind loads images into a kind cluster (and implies --with-postgres); --build builds them here.
# A kind cluster starts empty: --baseline ("<name> <version>" lines, from deployments.sh last) is
# brought up first, then the changed services roll out while a load generator sends toasties through
# the Services; one failed request fails the deploy. A pipeline version other than the baseline's
# rolls every service again. Then --verify runs (NAMESPACE exported). --plan only decides: deploy=true
# or false, also appended to $GITHUB_OUTPUT. Defaults: --namespace toasties (created when absent),
# --timeout 300s. Environment: IMAGE_REPOSITORY, DOCKER, KUBECTL, KIND (lib/delivery.sh); optionally
# CHILLYBIN_DATABASE_URL (Secret chillybin-db), REGISTRY_PULL_TOKEN with REGISTRY_PULL_USER (registry-pull).
set -euo pipefail
# shellcheck source=scripts/delivery/lib/delivery.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/delivery.sh"

namespace=toasties kind_cluster="" build=false baseline_file="" timeout=300s verify=""
with_postgres=false with_unleash=false plan_only=false only=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --kind) kind_cluster="${2:?needs a cluster name}" with_postgres=true && shift ;;
    --namespace) namespace="${2:?needs a namespace}" && shift ;;
    --timeout) timeout="${2:?needs a duration}" && shift ;;
    --verify) verify="${2:?needs a command}" && shift ;;
    --baseline) baseline_file="${2:?needs a file}" && shift ;;
    --build) build=true ;;
    --with-postgres) with_postgres=true ;;
    --with-unleash) with_unleash=true ;;
    --plan) DRY_RUN=true plan_only=true ;;
    *) common_arg "$1" ;;
  esac
  shift
done
[[ -n "$kind_cluster" || ("$build" == false && -z "$baseline_file") ]] ||
  die "--build and --baseline need --kind: a real cluster pulls published images and says what runs"
[[ -z "$baseline_file" || -r "$baseline_file" ]] || die "cannot read --baseline $baseline_file"

manifests="$REPO/deploy/k8s"
repository="$(image_repository)"
versions="$(all_versions)"
pipeline="$("$DELIVERY/last-commit" pipeline)"
if [[ ${#only[@]} -gt 0 ]]; then
  check_services "$versions" "${only[@]}"
  versions="$(echo "$versions" | grep -E "^($(IFS='|'; echo "${only[*]}")) ")"
fi
KCTL=("$KUBECTL" --namespace "$namespace")
ANNOTATION=toasties-galore/deployed-version

# A kubeconfig that logs in through a cloud plugin fails on a runner without it: say so, clearly.
plugin="$([[ -n "$kind_cluster" ]] || "$KUBECTL" config view --minify -o 'jsonpath={.users[0].user.exec.command}' 2>/dev/null || true)"
[[ -z "$plugin" ]] || have "$plugin" ||
  die "the kubeconfig logs in through the exec plugin '$plugin', which is not installed here; give the deploy a kubeconfig with a ServiceAccount token (docs/delivery.md)"

reachable=true
target="context $("$KUBECTL" config current-context 2>/dev/null || echo '(in-cluster)')"
if ! answer="$(have "$KUBECTL" && "$KUBECTL" version --request-timeout=10s 2>&1)"; then
  # HTTP 401: a ServiceAccount token made with `create token --duration` expires (or was revoked).
  ! grep -qiE 'unauthorized|provide credentials' <<<"$answer" ||
    die "the cluster refused the kubeconfig's token (Unauthorized): the ServiceAccount token in the KUBECONFIG secret has expired or was revoked; make a new one and update the secret (docs/delivery.md, Deploy to a real cluster)"
  [[ "$DRY_RUN" == true ]] || die "no cluster reachable with $KUBECTL (check KUBECONFIG / the current context)"
  reachable=false target="no reachable cluster; assuming nothing is deployed"
fi
echo "deploy to namespace $namespace, $target$([[ "$DRY_RUN" == true ]] && echo ' (dry run)')"
[[ -n "$kind_cluster" ]] && echo "kind cluster $kind_cluster: images are loaded into its nodes"

# What runs now, "<service> <version>" per line: the baseline to bring up, or the cluster's word.
baseline() { grep -E '^[a-z0-9-]+ [0-9a-f]{40}$' "$baseline_file" || true; }
running_version() {
  [[ -z "$baseline_file" ]] || { baseline | awk -v s="$1" '$1 == s { print $2 }' && return; }
  [[ "$reachable" == false ]] ||
    "${KCTL[@]}" get deployment "$1" -o "jsonpath={.metadata.annotations.$ANNOTATION}" 2>/dev/null || true
}

# Decide first, then act: the plan ("<service> <version> <running version>") is a dry run's output.
plan=()
rehearse=false again=false
if [[ -n "$baseline_file" ]]; then
  rehearse=$([[ ${#only[@]} -eq 0 ]] && echo true || echo false) # the load needs every service
  listed="$(baseline | tr '\n' ' ' | sed 's/ *$//')"
  echo "baseline (the last successful deploy): ${listed:-nothing (first deploy)}"
  # The machinery that deploys and proves changed: rehearse it with every service rolling again.
  [[ "$(running_version pipeline)" == "$pipeline" ]] ||
    { again=true && echo "pipeline: version $pipeline is not the baseline's -> every service rolls out again"; }
fi
while read -r service version <&3; do
  [[ -z "$service" ]] && continue
  current="$(running_version "$service")"
  [[ -z "$current" ]] && rehearse=false # it did not run: there is no service to keep up
  if [[ "$current" == "$version" && "$again" == false ]]; then
    echo "$service: $version is deployed, nothing to do"
  else
    echo "$service: deployed ${current:-nothing}, version $version -> deploy"
    plan+=("$service $version $current")
  fi
done 3<<<"$versions"
[[ ${#plan[@]} -gt 0 ]] || echo "nothing to deploy"
[[ "$plan_only" == false ]] ||
  { echo "deploy=$([[ ${#plan[@]} -gt 0 ]] && echo true || echo false)" | tee -a "${GITHUB_OUTPUT:-/dev/null}" && exit 0; }
[[ ${#plan[@]} -gt 0 ]] || exit 0
[[ -z "$baseline_file" || "$rehearse" == true ]] || echo "no rehearsal under load: the baseline does not run every service"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# deploy/k8s/<name>.yaml (as committed at <rev>, or the working tree's) with the placeholders filled.
render() {
  local name="$1" version="$2" rev="${3:-}" out="$work/$1-$2.yaml" hash
  [[ -n "$rev" ]] && git -C "$REPO" show "$rev:deploy/k8s/$name.yaml" >"$out.in" 2>/dev/null ||
    cp "$manifests/$name.yaml" "$out.in"
  # A ConfigMap named for its content: each ReplicaSet keeps its own, so undo restores config too.
  hash="$(sed -n '/^kind: ConfigMap$/,/^---$/p' "$out.in" | git hash-object --stdin | cut -c1-10)"
  sed -e "s|__IMAGE_REPOSITORY__|$repository|g" -e "s|__VERSION__|$version|g" \
    -e "s|__CONFIG_HASH__|$hash|g" "$out.in" >"$out"
  if grep -n '__[A-Z_]*__' "$out" >&2; then die "unfilled placeholder in deploy/k8s/$name.yaml"; fi
  echo "$out"
}

apply_manifest() {
  local name="$1" version="$2" rev="${3:-}" rendered
  rendered="$(render "$name" "$version" "$rev")" || return 1
  echo "  apply deploy/k8s/$name.yaml$([[ "$version" != - ]] && echo " at $version")"
  run "${KCTL[@]}" apply -f "$rendered"
  sed -n 's/^ *image: /    image /p' "$rendered" | sort -u
}

# Creates or updates a Secret from files (never from literals: argv is visible to other processes).
apply_secret() {
  [[ "$DRY_RUN" == false ]] || { echo "  would apply Secret $2" && return; }
  "${KCTL[@]}" create secret "$@" --dry-run=client -o yaml >"$work/secret-$2.yaml"
  run "${KCTL[@]}" apply -f "$work/secret-$2.yaml"
}

ensure_secrets() {
  if [[ -n "${REGISTRY_PULL_TOKEN:-}" ]]; then
    echo "  Secret registry-pull: pull credentials for ${repository%%/*} (REGISTRY_PULL_TOKEN)"
    (umask 077 && printf '{"auths":{"%s":{"auth":"%s"}}}' "${repository%%/*}" \
      "$(printf '%s:%s' "${REGISTRY_PULL_USER:-token}" "$REGISTRY_PULL_TOKEN" | base64 | tr -d '\n')" \
      >"$work/dockerconfig.json")
    apply_secret generic registry-pull --type=kubernetes.io/dockerconfigjson \
      --from-file=.dockerconfigjson="$work/dockerconfig.json"
  fi
  if [[ -n "${CHILLYBIN_DATABASE_URL:-}" ]]; then
    echo "  Secret chillybin-db: DATABASE_URL from CHILLYBIN_DATABASE_URL"
    (umask 077 && printf '%s' "$CHILLYBIN_DATABASE_URL" >"$work/DATABASE_URL")
    apply_secret generic chillybin-db --from-file=DATABASE_URL="$work/DATABASE_URL"
  elif [[ "$with_postgres" == false && "$reachable" == true ]] &&
    ! "${KCTL[@]}" get secret chillybin-db >/dev/null 2>&1; then
    die "Secret chillybin-db is missing in namespace $namespace: set CHILLYBIN_DATABASE_URL (a repository secret of the same name in CI) or create it (docs/delivery.md)"
  fi
  # A random admin token for chillybin's restock endpoint, created once and never printed.
  if [[ "$reachable" == false ]] || ! "${KCTL[@]}" get secret chillybin-admin >/dev/null 2>&1; then
    echo "  Secret chillybin-admin: a random CHILLYBIN_ADMIN_TOKEN (absent so far)"
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$work/CHILLYBIN_ADMIN_TOKEN")
    apply_secret generic chillybin-admin --from-file=CHILLYBIN_ADMIN_TOKEN="$work/CHILLYBIN_ADMIN_TOKEN"
  fi
}

# On kind, the nodes cannot pull from a registry that needs the runner's login: load the image.
load_image() {
  local image="$repository/$1:$2"
  [[ -n "$kind_cluster" ]] || return 0
  # --build builds this commit's versions; any other (a baseline) comes from the registry.
  if [[ "$build" == true ]] && grep -qx "$1 $2" <<<"$versions"; then build_image "$1" "$2" "$image"
  else run "$DOCKER" pull "$image"; fi || return 1
  run "$KIND" load docker-image "$image" --name "$kind_cluster"
}

# <service> <version> [<rev> | again]: "again" restarts the pods of an unchanged template too.
rollout() {
  local service="$1" version="$2" rev="${3:-}"
  [[ -f "$manifests/$service.yaml" ]] || die "no manifest for $service at deploy/k8s/$service.yaml"
  load_image "$service" "$version" || return 1
  apply_manifest "$service" "$version" "${rev#again}" || return 1
  [[ "$rev" != again ]] || run "${KCTL[@]}" rollout restart "deployment/$service" || return 1
  run "${KCTL[@]}" rollout status "deployment/$service" --timeout="$timeout"
}

# "kind/name" of every object in a rendered manifest, sorted.
objects() { awk '/^kind: / { k = tolower($2) } /^  name: / && k { print k "/" $2; k = "" }' "$1" | sort; }

# Back to every object of <service>'s <previous> version, as committed with it; what this run added
# (the new hashed ConfigMap; on a first deploy, everything) is deleted. The schema stays as it is:
# migrations are expand-only, so the previous version serves on the newest schema.
restore() {
  local service="$1" new old=/dev/null added
  new="$(render "$service" "$2")" || return 1
  [[ -z "$3" ]] || { echo "rollback $service: every object back to version $3" &&
    old="$(render "$service" "$3" "$3")" && run "${KCTL[@]}" apply -f "$old"; } || return 1
  added="$(comm -13 <(objects "$old") <(objects "$new") | tr '\n' ' ')"
  [[ -z "$added" ]] || run "${KCTL[@]}" delete --ignore-not-found $added || return 1 # one word each
  [[ -z "$3" ]] || run "${KCTL[@]}" rollout status "deployment/$service" --timeout="$timeout"
}

changed=()
# Prints diagnostics, restores what this run changed, newest first, and fails with the reason.
fail() {
  echo "deploy failed: $*" >&2
  [[ "$DRY_RUN" == true ]] && exit 1
  echo "--- diagnostics: namespace $namespace" >&2
  local selector=app.kubernetes.io/part-of=toasties-galore
  "${KCTL[@]}" get deployments,replicasets,pods,services,endpoints -o wide >&2 || true
  "${KCTL[@]}" get events --sort-by=.lastTimestamp >&2 || true
  "${KCTL[@]}" describe pods -l "$selector" >&2 || true
  "${KCTL[@]}" logs -l "$selector" --all-containers --prefix --tail=60 >&2 || true
  local i service version previous
  for ((i = ${#changed[@]} - 1; i >= 0; i--)); do
    read -r service version previous <<<"${changed[$i]}"
    restore "$service" "$version" "$previous" >&2 || echo "rollback $service: incomplete (see above)" >&2
  done
  exit 1
}

LOAD_POD=rehearsal-load
start_load() {
  local image="$1"
  echo "rehearsal: load generator $LOAD_POD sends toasties through the Services"
  [[ "$DRY_RUN" == false ]] || { echo "  would start pod/$LOAD_POD ($image), wait for a toastie" && return; }
  # A pod's image cannot change in place: a leftover from an earlier run goes first.
  run "${KCTL[@]}" delete pod "$LOAD_POD" --ignore-not-found --wait=true
  "${KCTL[@]}" create configmap "$LOAD_POD" --from-file=load.mjs="$DELIVERY/load/load.mjs" \
    --dry-run=client -o yaml >"$work/load-configmap.yaml"
  run "${KCTL[@]}" apply -f "$work/load-configmap.yaml"
  sed "s|__IMAGE__|$image|" "$DELIVERY/load/load.yaml" >"$work/load.yaml"
  run "${KCTL[@]}" apply -f "$work/load.yaml"
  run "${KCTL[@]}" wait --for=condition=Ready "pod/$LOAD_POD" --timeout=120s ||
    fail "the load generator did not start"
  # The rollout starts only once toasties are being served, so the load spans all of it.
  local tries=0
  until "${KCTL[@]}" logs "pod/$LOAD_POD" 2>/dev/null | grep -q '^load: first toastie ok'; do
    [[ $((tries += 1)) -le 60 ]] || fail "the baseline served no toastie within 60 s: $("${KCTL[@]}" logs "pod/$LOAD_POD" 2>&1 | tail -5)"
    sleep 1
  done
}

# Stops the load generator (SIGTERM: it finishes the requests in flight) and judges its count.
stop_load() {
  [[ "$DRY_RUN" == true ]] && { echo "  would stop the load generator and fail on any failed request"; return 0; }
  run "${KCTL[@]}" exec "$LOAD_POD" -- node -e 'process.kill(1, "SIGTERM")' || true
  run "${KCTL[@]}" wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$LOAD_POD" --timeout=60s ||
    fail "the load generator did not finish"
  local log done_line failed
  log="$("${KCTL[@]}" logs "pod/$LOAD_POD")"
  grep '^load: FAILED' <<<"$log" >&2 || true
  done_line="$(grep '^load: done ' <<<"$log" | tail -1)"
  echo "rehearsal: ${done_line#load: }"
  failed="$(sed -n 's/.* failed=\([0-9][0-9]*\).*/\1/p' <<<"$done_line")"
  [[ -n "$failed" ]] || fail "the load generator reported no count"
  [[ "$failed" -eq 0 ]] || fail "$failed request(s) failed during the rollout"
  run "${KCTL[@]}" delete pod "$LOAD_POD" --wait=false
}

echo "shared resources"
# Every namespace has the ServiceAccount "default"; reading it needs no cluster-wide rights.
[[ "$reachable" == true ]] && "${KCTL[@]}" get serviceaccount default >/dev/null 2>&1 ||
  run "$KUBECTL" create namespace "$namespace"
ensure_secrets
for extra in postgres unleash; do
  [[ "$(eval echo "\$with_$extra")" == true ]] || continue
  apply_manifest "$extra" -
  run "${KCTL[@]}" rollout status "deployment/$extra" --timeout="$timeout"
done

if [[ -n "$baseline_file" ]]; then
  # What production ran, each with the manifest of its own version.
  while read -r service version; do
    [[ -z "$service" ]] && continue
    echo "$service: bring up the baseline $version"
    rollout "$service" "$version" "$version" || die "could not bring up the baseline $service $version"
  done < <(baseline | grep -E "^($(echo "$versions" | cut -d' ' -f1 | paste -sd'|' -)) ")
  [[ "$rehearse" == false ]] || start_load "$repository/jafflr:$(running_version jafflr)"
fi

# Name order puts chillybin (the provider) before jafflr (its caller).
for entry in "${plan[@]}"; do
  read -r service version current <<<"$entry"
  echo "$service: deploy $repository/$service:$version"
  changed+=("$entry")
  rollout "$service" "$version" "$([[ "$version" == "$current" ]] && echo again)" ||
    fail "$service $version did not become ready within $timeout"
done

[[ "$rehearse" == true ]] && stop_load

[[ -z "$verify" ]] || echo "verify: $verify$([[ "$DRY_RUN" == true ]] && echo ' (dry run: not run)')"
[[ -z "$verify" || "$DRY_RUN" == true ]] ||
  NAMESPACE="$namespace" bash -c "$verify" || fail "the post-deploy check failed: $verify"

# Recorded only now: a version that failed its proof is retried by the next deploy. Then the hashed
# ConfigMaps no ReplicaSet refers to any more go (those of the revisions undo could return to stay).
names=""
for entry in "${plan[@]}"; do
  read -r service version _ <<<"$entry"
  names+="${names:+ }$service"
  run "${KCTL[@]}" annotate "deployment/$service" "$ANNOTATION=$version" --overwrite
  used="$("${KCTL[@]}" get replicasets -l "app.kubernetes.io/name=$service" -o 'jsonpath={..configMapRef.name}' || true)"
  unused="$([[ -z "$used" ]] || "${KCTL[@]}" get configmaps -l "app.kubernetes.io/name=$service" \
    -o 'jsonpath={.items[*].metadata.name}' | tr ' ' '\n' | grep -vxF "$(tr ' ' '\n' <<<"$used")" | tr '\n' ' ' || true)"
  [[ -z "$unused" ]] || run "${KCTL[@]}" delete configmap $unused
done
[[ "$DRY_RUN" == true ]] && echo "would deploy: $names (dry run: nothing changed)" || echo "deployed: $names"
