# shellcheck shell=bash
# Shared by publish.sh, deploy.sh, verify.sh and deployments.sh (sourced). Portable bash 3.2+.
# They act on the repository of the current directory. Environment:
#   IMAGE_REPOSITORY  where images live (default: ghcr.io/<GITHUB_REPOSITORY, else the `origin`
#                     remote on GitHub>, else localhost/toasties-galore)
#   DOCKER, KUBECTL, KIND   the binaries to use (default docker, kubectl, kind)

DELIVERY="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(git rev-parse --show-toplevel)"
DOCKER="${DOCKER:-docker}"
KUBECTL="${KUBECTL:-kubectl}"
KIND="${KIND:-kind}"
DRY_RUN="${DRY_RUN:-false}"

die() { echo "$(basename "$0"): $*" >&2 && exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# owner/name of the GitHub repository, or nothing.
github_slug() {
  local url
  url="$(git -C "$REPO" remote get-url origin 2>/dev/null || true)"
  [[ -z "${GITHUB_REPOSITORY:-}" ]] || { echo "$GITHUB_REPOSITORY" && return; }
  [[ ! "$url" =~ github\.com[:/]([^/]+)/([^/]+)$ ]] || echo "${BASH_REMATCH[1]}/${BASH_REMATCH[2]%.git}"
}

# Registry paths must be lower case, and a fork's owner often is not.
image_repository() {
  local repository="${IMAGE_REPOSITORY:-}"
  [[ -n "$repository" ]] || { repository="$(github_slug)" && repository="${repository:+ghcr.io/$repository}"; }
  repository="${repository%/}"
  echo "${repository:-localhost/toasties-galore}" | tr '[:upper:]' '[:lower:]'
}

# "<service> <version>" lines for every service at HEAD (without the pipeline's).
all_versions() { "$DELIVERY/last-commit" --all | grep -v '^pipeline '; }

# Prints a command as it would run; runs it unless this is a dry run.
run() {
  local shown
  shown="$(printf '%q ' "$@")"
  [[ "$DRY_RUN" == false ]] || { echo "  would run: ${shown% }" && return; }
  echo "  + ${shown% }" && "$@"
}

# What every script reads alike: --dry-run, --help (the header comment), an unknown option, and a
# service name (appended to the caller's `only` array).
common_arg() {
  case "$1" in
    --dry-run) DRY_RUN=true ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' && exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) only+=("$1") ;;
  esac
}

# Dies unless every name after the "<service> <version>" lines is one of their services.
check_services() {
  local versions="$1" name
  for name in "${@:2}"; do
    echo "$versions" | cut -d' ' -f1 | grep -qx -- "$name" || die "unknown service: $name"
  done
}

# One image: the top-level Dockerfile with SERVICE and VERSION. No provenance attestation: with
# containerd's image store it makes an index whose extra manifest `kind load` cannot export.
build_image() {
  local service="$1" version="$2" image="$3" slug
  slug="$(github_slug)"
  run "$DOCKER" build --provenance=false --file "$REPO/Dockerfile" \
    --build-arg "SERVICE=$service" --build-arg "VERSION=$version" \
    ${slug:+--build-arg "SOURCE=${GITHUB_SERVER_URL:-https://github.com}/$slug"} \
    --tag "$image" "$REPO"
}
