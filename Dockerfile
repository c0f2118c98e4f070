# ifvip: a floating-IP manager (CARP/VRRP speaker, netlink ifup/ifdown) in one image.
#
#   docker build -t ifvip .
#   docker run -d --name vip42 --network host --cap-add NET_ADMIN --cap-add NET_RAW \
#     --read-only --tmpfs /run --tmpfs /tmp \
#     -v /run/secrets/carp-pass:/run/secrets/carp-pass:ro \
#     ifvip run -i eth0 -s 198.51.100.1 -v 42 -o /run/secrets/carp-pass \
#       -a 198.51.100.100 --masklen 24 -P -z
#
# No --privileged: NET_ADMIN adds and removes addresses, routes and links (netlink); NET_RAW
# opens the protocol-112 and ARP/NA sockets. The host network is required: the virtual
# address lives on the host's interface. /proc/sys stays read-only in the container: an
# `accept_dad` 0 hook becomes nodad addresses, any other sysctl hook fails the ifup before
# anything is applied (set those on the host; deploy/README.md).
#
# The base is a build argument so that a locally built Debian base can stand in for the
# public one (tests/netns/test_image.py builds it with debootstrap); both are Debian 12.
ARG BASE=debian:bookworm-slim

# --- runtime: Debian's python3, and iproute2 for `ip` in users' hook lines ---
FROM ${BASE} AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 iproute2 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log

# --- deps: the tools that build the venv, and ifvip's dependencies (all pure Python) ---
FROM ${BASE} AS deps
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
# A throwaway venv holds the build backend; /opt/ifvip gets only what runs.
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --no-cache-dir --disable-pip-version-check hatchling \
 && python3 -m venv /opt/ifvip
# From pyproject.toml alone, so that these layers survive edits of the source.
COPY pyproject.toml README.md /src/
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"]))' > /src/requirements.txt \
 && /opt/ifvip/bin/pip install --no-cache-dir --disable-pip-version-check -r /src/requirements.txt

# --- build: ifvip's wheel into the venv; pip and setuptools leave it ---
FROM deps AS build
COPY ifvip /src/ifvip
RUN /opt/build/bin/pip wheel --no-cache-dir --disable-pip-version-check --no-deps \
      --no-build-isolation -w /wheels /src \
 && /opt/ifvip/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps /wheels/*.whl \
 && /opt/ifvip/bin/pip uninstall -y -q pip setuptools \
 && /opt/ifvip/bin/python -m compileall -q /opt/ifvip/lib

# --- the image: runtime + the venv, nothing of the build stages ---
FROM runtime
ARG BASE
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="ifvip" \
      org.opencontainers.image.description="Floating IP manager: CARP (ucarp-compatible) and VRRP (keepalived-compatible) speaker, interfaces(5) reader, netlink ifup/ifdown" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="GPL-2.0-or-later" \
      org.opencontainers.image.base.name="${BASE}" \
      io.ifvip.run-options="--network host --cap-add NET_ADMIN --cap-add NET_RAW --read-only --tmpfs /run --tmpfs /tmp"
COPY --from=build /opt/ifvip /opt/ifvip
COPY deploy/container/entrypoint.sh /usr/local/bin/ifvip-entrypoint
COPY deploy/container/healthcheck.sh /usr/local/bin/ifvip-healthcheck
COPY interfaces.d-examples/ /usr/share/doc/ifvip/examples/
COPY man/ifvip.8 /usr/share/man/man8/
COPY man/ifvip-interfaces.5 /usr/share/man/man5/
# The CLI dispatches on argv[0]: `ifquery`, `ifup` and `ifdown` act as ifupdown's commands;
# they run-parts ifupdown's hook directories, empty here (a mounted /etc/network brings its own).
RUN for name in ifvip ifquery ifup ifdown; do ln -s /opt/ifvip/bin/ifvip /usr/local/sbin/$name; done \
 && chmod 0755 /usr/local/bin/ifvip-entrypoint /usr/local/bin/ifvip-healthcheck \
 && mkdir -p /etc/ifvip /run/ifvip \
 && for phase in if-pre-up.d if-up.d if-down.d if-post-down.d; do mkdir -p /etc/network/$phase; done
ENV PATH=/usr/local/sbin:/usr/local/bin:/opt/ifvip/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# State goes to /run (ifvip in /run/ifvip, ifup/ifdown in /run/network) and scratch files
# to /tmp; nothing else is written, so the image runs with --read-only. /run is not a
# VOLUME: a volume would outlive the container and bring back stale state, while group
# state must start empty, as on a reboot; give it a tmpfs (--tmpfs /run, compose `tmpfs:`,
# Kubernetes emptyDir medium: Memory).
STOPSIGNAL SIGTERM
# Healthy while the speaker (PID 1, `ifvip run`) answers `ifvip status` on the status
# socket it serves (or GET /healthz with --metrics and no socket); one-shot commands
# (ifup, check) are not daemons and have no health to report.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/ifvip-healthcheck"]
ENTRYPOINT ["/usr/local/bin/ifvip-entrypoint"]
CMD ["run"]
