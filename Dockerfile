# Warden worker image. Multi-stage: build with the Go toolchain, run as a
# non-root user on a small Debian base (the sandbox execs real programs:
# shell tools need /bin/sh and coreutils).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -o /out/warden ./cmd/warden

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates coreutils \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/warden --create-home warden
COPY --from=build /out/warden /usr/local/bin/warden
USER warden
WORKDIR /var/lib/warden
ENV WARDEN_DATA_DIR=/var/lib/warden
ENTRYPOINT ["/usr/local/bin/warden"]
CMD ["worker"]
