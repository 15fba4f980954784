# syntax=docker/dockerfile:1
#
# Container image of piwigo-s3upload.
#
#   docker build -t piwigo-s3upload:latest .
#   docker run --rm \
#     -v /var/www/html/piwigo:/var/www/html/piwigo:ro \
#     -v /etc/piwigo-s3upload.toml:/etc/piwigo-s3upload.toml:ro \
#     piwigo-s3upload:latest
#
# The daemon runs as uid 10001: the gallery and the configuration file must
# be readable by that uid (world-readable, or group-readable with --group-add).

ARG RUST_VERSION=1

# ---- build ---------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /build

# python3 gathers the crates' licences (below).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, against placeholder sources: this layer is rebuilt
# only when Cargo.toml or Cargo.lock change, not on every source edit.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# The real sources. migrations/ is compiled in with include_str!;
# config.example.toml is read by the unit tests.
COPY src ./src
COPY migrations ./migrations
COPY config.example.toml ./
# The binary links every crate statically: their notices travel with it,
# gathered as for the Debian package. Here, not in the dependency layer,
# so that editing the script does not rebuild every crate.
COPY packaging/deb/crate_licenses.py ./
# Copied files keep their modification times, which may predate the
# placeholder build above: touch the crate roots so cargo rebuilds the crate.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && cp target/release/piwigo-s3upload /piwigo-s3upload \
    && python3 crate_licenses.py | gzip -9n > /third-party-licenses.gz

# ---- runtime -------------------------------------------------------------
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="piwigo-s3upload" \
      org.opencontainers.image.description="Copies every full-size photo of a Piwigo gallery to Amazon S3 or any S3-compatible store" \
      org.opencontainers.image.licenses="MIT OR GPL-2.0-or-later"

# CA certificates for TLS to S3 and to the database; nothing else is needed.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 piwigo-s3upload \
    && useradd --uid 10001 --gid 10001 --no-create-home --no-log-init \
       --home-dir /nonexistent --shell /usr/sbin/nologin piwigo-s3upload

COPY --from=builder /piwigo-s3upload /usr/local/bin/piwigo-s3upload
COPY --from=builder /third-party-licenses.gz /usr/share/doc/piwigo-s3upload/third-party-licenses.gz
COPY LICENSE-MIT LICENSE-GPL /usr/share/doc/piwigo-s3upload/
# The companion Piwigo plugin, to copy into Piwigo's plugins/ folder.
COPY piwigo-plugin/s3upload_companion /usr/share/piwigo-s3upload/piwigo-plugin/s3upload_companion

USER 10001
# Liveness through the daemon's own listener ([http] listen must be set,
# e.g. "127.0.0.1:9187"): no curl in the image.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/piwigo-s3upload", "health"]
ENTRYPOINT ["/usr/local/bin/piwigo-s3upload"]
CMD ["--config", "/etc/piwigo-s3upload.toml", "run"]
