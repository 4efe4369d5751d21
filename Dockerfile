# syntax=docker/dockerfile:1
# One image for the three Pulse commands: /usr/local/bin/gateway (the entrypoint), deployer-sim and
# billing-sim (the Helm chart runs them with command:). Static binaries on distroless/static: no shell,
# no package manager, no libc; runs as the image's non-root user 65532.
#
#   docker build -t ghcr.io/pulseplatform/pulse:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/pulseplatform/pulse:0.1.0 --push .

# The toolchain the module asks for (go.mod: go 1.26.x); the builder runs natively and cross-compiles.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
ENV GOTOOLCHAIN=auto
# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/gateway ./cmd/deployer-sim ./cmd/billing-sim

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="pulse" \
      org.opencontainers.image.description="Pulse gateway (Centrifugo protocol over NATS JetStream) and simulators" \
      org.opencontainers.image.source="https://github.com/pulseplatform/pulse" \
      org.opencontainers.image.version="$VERSION"
COPY --from=build /out/ /usr/local/bin/
# Listen on every interface inside the container (the binary's own default is 127.0.0.1:8080).
ENV PULSE_ADDR=:8080
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/gateway"]
