#!/usr/bin/env bash
# Builds and pushes the image of every service whose version has no image yet.
#
#   scripts/delivery/publish.sh [--dry-run | --no-push] [--base <rev>] [service...]
#
# A service's version is its last relevant commit (scripts/delivery/last-commit), and the image tag is that
# version: <IMAGE_REPOSITORY>/<service>:<version>. An existing tag is never rebuilt, so the
# registry remembers what was published: a commit that touches only jafflr builds only jafflr,
# and a run that failed half-way is completed by the next one. A tag counts as absent only when
# the registry answers "manifest unknown"; any other answer (auth, network, rate limit) fails the
# run rather than overwrite a published tag with a different build.
#   --dry-run     print what would be built and pushed, change nothing (no registry login needed;
#                 with docker available the registry is still asked which tags exist)
#   --no-push     build every considered image, push nothing, ask no registry (pull requests)
#   --base <rev>  consider only the services affected since <rev> (scripts/delivery/affected <rev> HEAD)
#   service...    consider only these
# Environment: IMAGE_REPOSITORY, DOCKER (see scripts/delivery/lib/delivery.sh).
set -euo pipefail
# shellcheck source=scripts/delivery/lib/delivery.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/delivery.sh"

base=""
push=true
only=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base)
      [[ $# -ge 2 ]] || die "--base needs a revision"
      base="$2"
      shift
      ;;
    --no-push) push=false ;;
    *) common_arg "$1" ;;
  esac
  shift
done

repository="$(image_repository)"
versions="$(all_versions)"
candidates="$(echo "$versions" | cut -d' ' -f1)"
if [[ -n "$base" ]]; then
  candidates="$("$DELIVERY/affected" "$base" HEAD)"
fi
if [[ ${#only[@]} -gt 0 ]]; then
  check_services "$versions" "${only[@]}"
  candidates="$(printf '%s\n' "${only[@]}" | grep -Fx -f <(echo "$candidates") || true)"
fi

registry_checked=$push
if [[ "$push" == true ]] && ! have "$DOCKER"; then
  [[ "$DRY_RUN" == true ]] || die "$DOCKER not found: publishing needs docker"
  registry_checked=false
  echo "note: $DOCKER not found, so the registry cannot be asked which tags exist; assuming none do"
fi

echo "publish to $repository$([[ "$push" == false ]] && echo ' (build only, no push)')$([[ "$DRY_RUN" == true ]] && echo ' (dry run)')"
if [[ -n "$base" ]]; then
  echo "services affected since $base: $(echo "$candidates" | tr '\n' ' ' | sed 's/ *$//; s/^$/(none)/')"
fi
built=0
skipped=0
while read -r service version <&3; do
  [[ -z "$service" ]] && continue
  echo "$candidates" | grep -qx -- "$service" || continue
  image="$repository/$service:$version"
  if [[ "$registry_checked" == true ]]; then
    if answer="$("$DOCKER" manifest inspect "$image" 2>&1 >/dev/null)"; then
      echo "$service: $image already published, skipping"
      skipped=$((skipped + 1))
      continue
    elif ! grep -qi 'manifest unknown' <<<"$answer"; then
      [[ "$DRY_RUN" == true ]] || die "cannot tell whether $image is published: $answer"
      echo "$service: cannot tell whether $image is published ($answer); a real run would stop here"
    fi
  fi
  if [[ "$push" == true ]]; then
    echo "$service: build and push $image"
    build_image "$service" "$version" "$image"
    run "$DOCKER" push "$image"
  else
    echo "$service: build $image (not pushed)"
    build_image "$service" "$version" "$image"
  fi
  built=$((built + 1))
done 3<<<"$versions"

if [[ "$push" == false ]]; then
  echo "built $built image(s), pushed none"
elif [[ "$DRY_RUN" == true ]]; then
  echo "would publish $built image(s), $skipped already published"
else
  echo "published $built image(s), $skipped already published"
fi
