# Sluice as a container: build in one stage, run as a non-root user in a slim second stage.
#   docker build -t sluice .
#   docker run --network host -v $PWD/examples/sidecar.json:/etc/sluice/sluice.json:ro sluice
# SIGHUP (docker kill -s HUP) reloads the mounted config; SIGTERM (docker stop) drains and exits.
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ cmake make pkg-config \
      libuv1-dev node-llhttp libssl-dev nlohmann-json3-dev libc-ares-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
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
 && apt-get install -y --no-install-recommends libuv1 libc-ares2 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --shell /usr/sbin/nologin sluice
COPY --from=build /src/build/core/sluice /usr/local/bin/sluice
COPY examples/sidecar.json /etc/sluice/sluice.json
USER sluice
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sluice", "-c", "/etc/sluice/sluice.json"]
