# syntax=docker/dockerfile:1
# The production image: `docker build -t voice-agent .`, then `docker run -p 8000:8000 -e SECRET_KEY=... voice-agent`
# (docker-compose.yml runs it with PostgreSQL and Redis; docs/deploy.md). Two stages: the build stage has the dev
# dependencies and compiles src/ to dist/; the runtime stage has production dependencies, the compiled build and the
# local voice engines' Debian packages, and nothing of the TypeScript toolchain.
#
# Base: the official Node image on Debian 12 slim, pinned by exact tag (20.20.2 is Node 20's last release; Node 20
# left maintenance in April 2026, so move to 22 by changing NODE_IMAGE, e.g. node:22.22.2-bookworm-slim). To pin by
# digest as well: node:20.20.2-bookworm-slim@sha256:<digest from `docker buildx imagetools inspect`>.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first, so a code change does not reinstall them. package.json's allowScripts skips onnxruntime-node's
# CUDA download.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build
# Hook for the web console (another change adds it): copy its sources and build it here, into dist/ (where the
# runtime stage takes everything from), e.g.
#   COPY console ./console
#   RUN npm run build:console

FROM ${NODE_IMAGE} AS runtime
# espeak-ng: local text to speech; pocketsphinx + pocketsphinx-en-us: local speech to text (scripts/system-deps.sh
# names the same); tini: PID 1, so SIGTERM reaches node (which ends live calls cleanly before exiting) and zombies
# are reaped. Debian's versions are not pinned: the archive drops old ones, and the base tag fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
  && apt-get install -y --no-install-recommends espeak-ng pocketsphinx pocketsphinx-en-us tini ca-certificates \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# `npm run migrate` (a release step; it runs dist/migrate.js here).
COPY scripts/migrate.mjs ./scripts/migrate.mjs
# The embedded database, the development secret and local recordings live in DATA_DIR: a volume, owned by the
# image's unprivileged `node` user (uid 1000).
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 8000
# Ready = the database (and Redis, when configured) answer. start-period covers a first boot's migrations.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/health/ready`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains: live calls end as hung up (records, recordings), requests in flight finish, at most 15 s; give
# the container that long to stop (`docker stop -t 30`, compose's stop_grace_period, Kubernetes'
# terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--enable-source-maps", "dist/main.js"]
