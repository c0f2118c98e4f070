#!/bin/sh
# ifvip-healthcheck: the image's HEALTHCHECK and the DaemonSet's liveness probe.
#
# Healthy while the container's main process (PID 1, or IFVIP_HEALTH_PID) is `ifvip run` and
# answers on the status socket it serves: `ifvip status` (default STATE_DIR/ifvip.sock). With
# the socket turned off (--status-socket '') and --metrics ADDR:PORT given, GET /healthz
# answers instead. Only when neither is served does it fall back to checking that the
# process holds its raw protocol-112 socket, the one CARP and VRRP adverts go through.
# --state-dir, --status-socket and --metrics are read from the process itself (its command
# line, then its IFVIP_* environment), so `docker exec` and `kubectl exec` agree with the
# daemon whatever environment they carry. A zombie, stopped or other process is unhealthy.
set -eu
pid="${IFVIP_HEALTH_PID:-1}"

state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null) || state=""
case "$state" in
"" | Z | X | T)
    echo "ifvip-healthcheck: process $pid is not running" >&2
    exit 1
    ;;
esac
# ifvip runs as `python /path/ifvip ARGS` (or through a link named ifup, ifquery...).
if ! tr '\0' '\n' <"/proc/$pid/cmdline" | sed 's|.*/||' | grep -qx 'ifvip'; then
    echo "ifvip-healthcheck: process $pid is not ifvip" >&2
    exit 1
fi

# The process's settings: its environment first, its command line overrides.
environ() {
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n "s/^$1=//p" | head -n 1
}
has_env() {
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -q "^$1="
}
state_dir=$(environ IFVIP_STATE_DIR)
socket=$(environ IFVIP_STATUS_SOCKET)
socket_set=no
if has_env IFVIP_STATUS_SOCKET; then socket_set=yes; fi
metrics=$(environ IFVIP_METRICS)
running=no
want=""
# One line per argument (an empty one too), up to an end mark.
args=$(tr '\0' '\n' <"/proc/$pid/cmdline"; printf '\001end\n')
end=$(printf '\001end')
while IFS= read -r word; do
    [ "$word" = "$end" ] && break
    if [ -n "$want" ]; then
        case "$want" in
        state) state_dir=$word ;;
        socket) socket=$word socket_set=yes ;;
        metrics) metrics=$word ;;
        esac
        want=""
        continue
    fi
    case "$word" in
    run) running=yes ;;
    --state-dir) want=state ;;
    --state-dir=*) state_dir=${word#*=} ;;
    --status-socket) want=socket ;;
    --status-socket=*) socket=${word#*=} socket_set=yes ;;
    --metrics) want=metrics ;;
    --metrics=*) metrics=${word#*=} ;;
    esac
done <<EOF
$args
EOF
if [ "$running" != yes ]; then
    echo "ifvip-healthcheck: process $pid is not \`ifvip run\`: no status socket to ask" >&2
    exit 1
fi

# 1. The status socket `ifvip run` serves (unless turned off).
if [ "$socket_set" = no ] || [ -n "$socket" ]; then
    set -- status --state-dir "${state_dir:-/run/ifvip}"
    if [ -n "$socket" ]; then set -- "$@" --socket "$socket"; fi
    if out=$(ifvip "$@" 2>&1); then
        printf '%s\n' "$out"
        exit 0
    fi
    echo "ifvip-healthcheck: process $pid does not answer on its status socket: $out" >&2
    exit 1
fi

# 2. /healthz of --metrics.
if [ -n "$metrics" ]; then
    exec python3 -c '
import sys, urllib.request
given = sys.argv[1]
host, _, port = given.rpartition(":")
host = host.strip("[]")
host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
url = f"http://[{host}]:{port}/healthz" if ":" in host else f"http://{host}:{port}/healthz"
try:
    with urllib.request.urlopen(url, timeout=4) as answer:
        print(f"{url}: {answer.status}")
except Exception as exc:
    print(f"ifvip-healthcheck: {url}: {exc}", file=sys.stderr)
    sys.exit(1)
' "$metrics"
fi

# 3. Neither is served: the process holds its protocol-112 socket. Socket inodes of the
# process, then the raw sockets bound to protocol 112 (0x70): in /proc/net/raw{,6} the
# "port" of a raw socket's local address is its protocol.
inodes=$(for fd in "/proc/$pid"/fd/*; do readlink "$fd" 2>/dev/null || true; done |
    sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p')
if [ -z "$inodes" ]; then
    echo "ifvip-healthcheck: process $pid has no sockets" >&2
    exit 1
fi
for table in /proc/net/raw /proc/net/raw6; do
    [ -r "$table" ] || continue
    for inode in $(awk 'NR > 1 && $2 ~ /:0070$/ { print $10 }' "$table"); do
        for own in $inodes; do
            if [ "$inode" = "$own" ]; then
                exit 0
            fi
        done
    done
done
echo "ifvip-healthcheck: process $pid holds no protocol-112 socket" >&2
exit 1
