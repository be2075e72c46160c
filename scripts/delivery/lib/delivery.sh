# shellcheck shell=bash
# Shared by publish.sh and deploy.sh (sourced, not run). Portable bash 3.2+.
#
# The repository acted on is the one of the current directory; the tools are the ones next to
# this file. Environment:
#   IMAGE_REPOSITORY  where images live, e.g. ghcr.io/octocat/toasties-galore (default: from
#                     GITHUB_REPOSITORY, else the `origin` remote on GitHub, else localhost/toasties-galore)
#   DOCKER, KUBECTL, KIND   the binaries to use (default docker, kubectl, kind)

DELIVERY="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(git rev-parse --show-toplevel)"
DOCKER="${DOCKER:-docker}"
KUBECTL="${KUBECTL:-kubectl}"
KIND="${KIND:-kind}"
DRY_RUN="${DRY_RUN:-false}"

lower() { tr '[:upper:]' '[:lower:]'; }

die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

# owner/name of the GitHub repository, or nothing.
github_slug() {
  if [[ -n "${GITHUB_REPOSITORY:-}" ]]; then
    echo "$GITHUB_REPOSITORY"
    return
  fi
  local url
  url="$(git -C "$REPO" remote get-url origin 2>/dev/null || true)"
  if [[ "$url" =~ github\.com[:/]([^/]+)/([^/]+)$ ]]; then
    echo "${BASH_REMATCH[1]}/${BASH_REMATCH[2]%.git}"
  fi
}

# Registry paths must be lower case, and a fork's owner often is not.
image_repository() {
  if [[ -n "${IMAGE_REPOSITORY:-}" ]]; then
    echo "${IMAGE_REPOSITORY%/}" | lower
    return
  fi
  local slug
  slug="$(github_slug)"
  if [[ -n "$slug" ]]; then
    echo "ghcr.io/$slug" | lower
  else
    echo "localhost/toasties-galore"
  fi
}

source_url() {
  local slug
  slug="$(github_slug)"
  [[ -n "$slug" ]] && echo "${GITHUB_SERVER_URL:-https://github.com}/$slug"
  return 0
}

# "<service> <version>" lines for every service at HEAD (last-commit --all).
all_versions() {
  "$DELIVERY/last-commit" --all
}

# Prints a command as it would run; runs it unless this is a dry run.
run() {
  local shown
  shown="$(printf '%q ' "$@")"
  if [[ "$DRY_RUN" == true ]]; then
    echo "  would run: ${shown% }"
  else
    echo "  + ${shown% }"
    "$@"
  fi
}

have() { command -v "$1" >/dev/null 2>&1; }

# The arguments both scripts read alike: --dry-run, --help (the script's header comment), an
# unknown option, and a service name (appended to the caller's `only` array).
common_arg() {
  case "$1" in
    --dry-run) DRY_RUN=true ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) only+=("$1") ;;
  esac
}

# Dies unless every name given after the "<service> <version>" lines is one of their services.
check_services() {
  local versions="$1" name
  shift
  for name in "$@"; do
    echo "$versions" | cut -d' ' -f1 | grep -qx -- "$name" || die "unknown service: $name"
  done
}

# The exact build of one image: the top-level Dockerfile with SERVICE and VERSION. No provenance
# attestation: with Docker 29's containerd image store it makes the image an index whose extra
# manifest `kind load docker-image` cannot export ("content digest not found", kind #3795).
build_image() {
  local service="$1" version="$2" image="$3" source
  source="$(source_url)"
  run "$DOCKER" build --provenance=false --file "$REPO/Dockerfile" \
    --build-arg "SERVICE=$service" \
    --build-arg "VERSION=$version" \
    ${source:+--build-arg "SOURCE=$source"} \
    --tag "$image" "$REPO"
}
