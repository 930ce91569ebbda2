# syntax=docker/dockerfile:1.7
# One image holds every binary (pushmail-binding, -session, -ingest,
# -dispatch, -transcode, -gateway, -smpp, -mailbox, -activesync, and `pushmail` for standalone
# and keys; the load generator is a feature `make bench` builds, not
# shipped); each Deployment picks its command. One
# image: the services share nearly all of their code, so separate images
# would each carry the same ~30 MB and be built, scanned and promoted
# eight times for nothing.

FROM rust:1.95-trixie AS build
WORKDIR /src
COPY . .
# librdkafka (built by rdkafka-sys) needs a C toolchain and OpenSSL headers,
# which the full rust image has; protoc comes vendored with the build.
# Two builds: cargo unifies features over what one build selects, and the
# gateway, transcode and activesync, which use no event bus, must not link
# librdkafka.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
      --bin pushmail --bin pushmail-binding --bin pushmail-session \
      --bin pushmail-ingest --bin pushmail-dispatch --bin pushmail-smpp \
      --bin pushmail-mailbox \
 && cargo build --release --locked --bin pushmail-gateway --bin pushmail-transcode \
      --bin pushmail-activesync \
 && mkdir /out \
 && for bin in pushmail pushmail-binding pushmail-session pushmail-ingest pushmail-dispatch \
      pushmail-transcode pushmail-gateway pushmail-smpp pushmail-mailbox pushmail-activesync; do cp "target/release/$bin" /out/; done

FROM debian:trixie-slim
# ffmpeg: transcode's audio/video stills; CJK fonts: PDF pages without
# embedded fonts; OpenSSL: librdkafka's TLS to managed Kafka.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates openssl ffmpeg fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/pushmail --shell /usr/sbin/nologin pushmail \
 && mkdir -p /var/lib/pushmail/blobs \
 && chown -R 10001:10001 /var/lib/pushmail
COPY --from=build /out/ /usr/local/bin/
# Non-root; the root filesystem can be mounted read-only: the services
# write only under /var/lib/pushmail (blobs, a volume) and /tmp.
USER 10001:10001
WORKDIR /var/lib/pushmail
VOLUME ["/var/lib/pushmail", "/tmp"]
CMD ["pushmail", "--help"]
