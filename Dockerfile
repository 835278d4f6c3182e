# syntax=docker/dockerfile:1
# karpenter-doctor's container image: `make image` (docker or podman build).
# Build: the Rust toolchain on Debian 12; runtime: distroless cc (glibc, libgcc, CA certificates;
# no shell, no package manager), as the unprivileged user 65532.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY rules rules
COPY benches benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/karpenter-doctor /out/karpenter-doctor

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/karpenter-doctor /usr/local/bin/karpenter-doctor
# One glibc malloc arena (as the chart sets it): see charts/karpenter-doctor/templates/deployment.yaml.
ENV MALLOC_ARENA_MAX=1
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/karpenter-doctor"]
