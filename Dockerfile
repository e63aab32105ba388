# Sluice as a container: build in one stage, run as a non-root user in a slim second stage.
#   docker build -t sluice .
#   docker run --network host -v ~/sluice:/etc/sluice:ro sluice     (~/sluice/sluice.json: your
#   config; without a mount the image runs examples/sidecar.json)
# SIGHUP (docker kill -s HUP) reloads the mounted config; SIGTERM (docker stop) drains and exits.
# The access log is on stdout (JSON lines), every other log line on stderr. The HEALTHCHECK asks
# the admin listener's /healthz with `sluice --probe`, so the image needs no curl.
# Podman keeps HEALTHCHECK only in Docker's image format: podman build --format docker.
# More: docs/running.md.
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ cmake make pkg-config \
      libuv1-dev node-llhttp libssl-dev nlohmann-json3-dev libc-ares-dev libpcre2-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Every source folder the top-level CMakeLists.txt adds; core whole (its feature folders vary).
COPY CMakeLists.txt ./
COPY balancer balancer
COPY conf conf
COPY core core
COPY health health
COPY tls tls
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF \
 && cmake --build build -j "$(nproc)" --target sluice \
 && strip build/core/sluice

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libuv1 libc-ares2 libssl3 libpcre2-8-0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sluice \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin sluice
COPY --from=build /src/build/core/sluice /usr/local/bin/sluice
COPY examples/sidecar.json /etc/sluice/sluice.json
# Numeric, so Kubernetes can verify runAsNonRoot without a runAsUser of its own.
USER 10001:10001
# The default config's listener and admin ports. The admin listener binds 127.0.0.1 there, which
# is enough for the HEALTHCHECK (it runs inside the container); publish 9901 only with a config
# that binds it to 0.0.0.0, and keep that port off the public network.
EXPOSE 8080 9901
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/sluice", "--probe", "http://127.0.0.1:9901/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sluice", "-c", "/etc/sluice/sluice.json"]
