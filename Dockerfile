# Warden worker image. Multi-stage: build with the Go toolchain, run as a
# non-root user on a small Debian base (the sandbox execs real programs:
# shell tools need /bin/sh and coreutils; the compose health check uses bash).
# The sandbox needs no capabilities; see the worker service in
# docker-compose.yml for the container security options it does need
# (deploy/seccomp/warden-worker.json).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
RUN go build -trimpath -o /out/warden ./cmd/warden \
    && go build -trimpath -o /out/warden-sandbox-init ./sandbox/cmd/warden-sandbox-init \
    && go build -trimpath -o /out/warden-tools ./tools/cmd/warden-tools

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates coreutils bash \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/warden --create-home warden
# Next to warden, the worker finds both helpers by itself: warden-sandbox-init
# (worker.Config.SandboxInit) and warden-tools, which runs the built-in Go tools
# without re-executing the whole worker binary (worker.Config.ToolBinary).
COPY --from=build /out/warden /out/warden-sandbox-init /out/warden-tools /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/warden
ENV WARDEN_DATA_DIR=/var/lib/warden
VOLUME ["/var/lib/warden"]
EXPOSE 9464
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/warden"]
CMD ["worker"]
