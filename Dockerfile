# mbrld container: the build stage compiles the daemon, the runtime stage
# holds only it and its shared libraries, run as a non-root user (uid 10001)
# with the data directory a volume. It listens on 0.0.0.0, so it needs a
# token file (protected mode refuses to start without one): the CMD reads
# /run/secrets/mbrld-tokens, a compose or Kubernetes secret, or a bind mount.
# Build and run (deploy/README.md: how to make the file; podman on machines
# without a Docker engine, and `make container-test`):
#   docker build -t mbrld .
#   docker run -p 8080:8080 -v mbrld-data:/var/lib/mbrld \
#       -v "$PWD/deploy/mbrld-tokens:/run/secrets/mbrld-tokens:ro" mbrld
# Another port: pass the flags (--listen 0.0.0.0:PORT ...) and -e MBRLD_PORT=PORT
# for the health check.
FROM docker.io/library/debian:12-slim AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential pkg-config libmicrohttpd-dev libcjson-dev libopenblas-dev check \
        libcurl4-openssl-dev libmujoco-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The portable x86-64-v3 baseline (the Makefile's default), not -march=native:
# the image may run on another CPU. The kernels are chosen at run time
# (AVX-512 where the CPU has it; the start-up log says "kernels isa=...";
# MBRLD_ISA=avx2 in the environment forces the AVX2 ones).
RUN make ARCH=-march=x86-64-v3 BUILD=/out /out/mbrld

FROM docker.io/library/debian:12-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libmicrohttpd12 libcjson1 libopenblas0-pthread curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 mbrld \
    && useradd --uid 10001 --gid 10001 --home-dir /var/lib/mbrld --create-home --no-log-init \
        --shell /usr/sbin/nologin mbrld
COPY --from=build /out/mbrld /usr/local/bin/mbrld
# numeric, so Kubernetes' runAsNonRoot can check it
USER 10001:10001
VOLUME /var/lib/mbrld
ENV MBRLD_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
    CMD curl -fsS "http://127.0.0.1:${MBRLD_PORT}/healthz" || exit 1
# SIGTERM makes mbrld finish in-flight requests and exit cleanly.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/mbrld"]
CMD ["--listen", "0.0.0.0:8080", "--data-dir", "/var/lib/mbrld", "--tokens", "/run/secrets/mbrld-tokens"]
