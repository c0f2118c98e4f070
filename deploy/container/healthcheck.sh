#!/bin/sh
# ifvip-healthcheck: healthy while the container's main process (PID 1, or IFVIP_HEALTH_PID)
# is ifvip and holds a raw protocol-112 socket, the one CARP and VRRP adverts go through.
# A daemon that lost its socket, hangs before opening it or was replaced by something else
# is reported unhealthy; a zombie or stopped process too.
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

# Socket inodes of the process, then the raw sockets bound to protocol 112 (0x70): in
# /proc/net/raw{,6} the "port" of a raw socket's local address is its protocol.
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
