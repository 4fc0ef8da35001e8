# syntax=docker/dockerfile:1
# modelguard in a container: the CLI (convert, scan, doctor, ...) and the quarantine service
# (serve). How to build and run it, and what the jail needs from the container runtime:
# docs/docker.md.

# The builder must be Debian 12 like the runtime image: a binary linked against a newer glibc
# (e.g. trixie's) does not start on distroless/cc-debian12. Pin a Rust version with
# --build-arg RUST_VERSION=1.95 for reproducible builds (Cargo.toml needs at least 1.89).
ARG RUST_VERSION=1
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-wasip1
COPY . .
# The WASI guest first: build.rs embeds guest/target/.../modelguard-guest.wasm only if it exists
# when the host is compiled; without it `--sandbox wasi|both` would fail at run time.
# This is the command guest/build.sh runs when rustup's wasm32-wasip1 target is installed, plus
# --locked (guest/ is a workspace member and shares Cargo.lock).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    cd guest && cargo build --locked --release --target wasm32-wasip1 --target-dir target
# All default features: host (CLI + native jail), wasi (wasmtime) and service (serve).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    cargo build --release --locked \
 && install -D -m 0755 target/release/modelguard /staging/modelguard \
 && mkdir -p /staging/empty

# glibc, libm and libgcc_s are all the binary links (ldd); cc-debian12 has them, and no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="modelguard" \
      org.opencontainers.image.description="Converts untrusted pickled ML checkpoints to safetensors without executing them" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /staging/modelguard /usr/local/bin/modelguard
# An empty named volume starts as a copy of the folder it is mounted on, ownership included, so
# uid 65532 can write to `-v NAME:/var/lib/modelguard` (serve) and `-v NAME:/out` (convert)
# without a chown. A folder missing from the image would become a root-owned volume.
COPY --from=build --chown=65532:65532 /staging/empty /var/lib/modelguard
COPY --from=build --chown=65532:65532 /staging/empty /out
# The compiled WASI guest is cached under $XDG_CACHE_HOME. With --read-only the only writable
# place is a tmpfs on /tmp, so keep the cache there; --sandbox both maps it executable, which
# needs that tmpfs mounted with `exec` (Docker's default for --tmpfs is noexec).
ENV XDG_CACHE_HOME=/tmp/cache
USER 65532:65532
VOLUME ["/var/lib/modelguard"]
# `serve` listens on 127.0.0.1:8080 by default; in a container pass --listen 0.0.0.0:8080.
EXPOSE 8080
# serve stops on SIGTERM (it installs a handler, so this works as PID 1 without --init); jobs
# it was running go back to the queue and run again at the next start.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/modelguard"]
CMD ["--help"]
