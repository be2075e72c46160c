#!/usr/bin/env bash
# Builds and pushes the image of every service whose version has no image yet.
#
#   scripts/delivery/publish.sh [--dry-run | --no-push] [--base <rev>] [service...]
#
# The tag is the version (last-commit): <IMAGE_REPOSITORY>/<service>:<version>. A tag is never
# rebuilt, so a commit touching only jafflr builds only jafflr and a run that failed half-way is
# completed by the next. Absent is what the registry says: MANIFEST_UNKNOWN (no such tag: ghcr.io's
# answer) or NAME_UNKNOWN (no such repository: a fork's first publish), see
# https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes, or docker's
# "no such manifest", its word when every endpoint said one of those or UNAUTHORIZED (the push then
# fails): continueOnError in https://github.com/docker/cli/blob/master/cli/registry/client/fetcher.go
# Any other answer fails the run rather than overwrite a published tag with a different build.
#   --no-push     build every considered image, push nothing, ask no registry (pull requests)
#   --base <rev>  consider only the services affected since <rev>
set -euo pipefail
# shellcheck source=scripts/delivery/lib/delivery.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/delivery.sh"

base="" push=true only=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) [[ $# -ge 2 ]] || die "--base needs a revision"; base="$2"; shift ;;
    --no-push) push=false ;;
    *) common_arg "$1" ;;
  esac
  shift
done

repository="$(image_repository)"
versions="$(all_versions)"
candidates="$(cut -d' ' -f1 <<<"$versions")"
[[ -z "$base" ]] || candidates="$("$DELIVERY/affected" "$base" HEAD)"
[[ ${#only[@]} -eq 0 ]] || { check_services "$versions" "${only[@]}" &&
  candidates="$(printf '%s\n' "${only[@]}" | grep -Fx -f <(echo "$candidates") || true)"; }
ask=$push why=""
[[ -n "${IMAGE_REPOSITORY:-}$(github_slug)" ]] || why="origin is not on GitHub: set IMAGE_REPOSITORY"
have "$DOCKER" || why="$DOCKER not found: publishing needs docker"
[[ "$push" == false || -z "$why" || "$DRY_RUN" == true ]] || die "$why"
[[ "$push" == false || -z "$why" ]] || { ask=false && echo "note: $why; no registry asked which tags exist, assuming none do"; }

echo "publish to $repository$([[ "$push" == false ]] && echo ' (build only, no push)')$([[ "$DRY_RUN" == true ]] && echo ' (dry run)')"
[[ -z "$base" ]] || echo "services affected since $base: $(echo $candidates)"
built=0 skipped=0
while read -r service version <&3; do
  grep -qx -- "$service" <<<"$candidates" || continue
  image="$repository/$service:$version"
  if [[ "$ask" == true ]]; then
    if answer="$("$DOCKER" manifest inspect "$image" 2>&1 >/dev/null)"; then
      echo "$service: $image already published, skipping" && skipped=$((skipped + 1)) && continue
    elif ! grep -qiE 'manifest unknown|name unknown|no such manifest' <<<"$answer"; then
      [[ "$DRY_RUN" == true ]] || die "cannot tell whether $image is published: $answer"
      echo "$service: cannot tell whether $image is published ($answer); a real run would stop here"
    fi
  fi
  candidate="$repository/$service:candidate-$version"
  # CI's tested build, if pushed: copied in the registry as one manifest (kind load takes no index).
  if [[ "$ask" == true ]] && "$DOCKER" manifest inspect "$candidate" >/dev/null 2>&1; then
    echo "$service: tag the tested $candidate as $image"
    run "$DOCKER" buildx imagetools create --prefer-index=false -t "$image" "$candidate"
  else
    echo "$service: build $([[ "$push" == true ]] && echo "and push ")$image"
    build_image "$service" "$version" "$image"
    [[ "$push" == false ]] || run "$DOCKER" push "$image"
  fi
  built=$((built + 1))
done 3<<<"$versions"

[[ "$push" == true ]] || { echo "built $built image(s), pushed none" && exit 0; }
echo "$([[ "$DRY_RUN" == true ]] && echo "would publish" || echo published) $built image(s), $skipped already published"
