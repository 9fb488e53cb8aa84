# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev dependencies, then drop them.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY plugins plugins
COPY routes routes
RUN npm run build && npm prune --omit=dev --ignore-scripts

# Runtime stage: production dependencies and compiled code only, as the unprivileged node user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
# The emulator writes its CA here; a named volume mounted on it inherits this ownership.
RUN mkdir -p /data && chown node:node /data
USER node
# The gateway's port (server.port) and the admin port deploy/kubernetes uses (server.adminPort).
EXPOSE 8080 9090
# The gateway answers /healthz on server.port, or on server.adminPort when set: set
# OBO_GATEWAY_HEALTH_PORT to that port. The emulator and sample API roles have their own checks
# (docker-compose.yml).
ENV OBO_GATEWAY_HEALTH_PORT=8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.OBO_GATEWAY_HEALTH_PORT}/healthz`, { signal: AbortSignal.timeout(2500) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "--enable-source-maps", "dist/src/cli.js"]
