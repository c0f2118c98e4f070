"""systemd's readiness protocol (sd_notify): READY=1, STOPPING=1, STATUS= over $NOTIFY_SOCKET.

Under `Type=notify` systemd passes the path of an AF_UNIX datagram socket in
$NOTIFY_SOCKET (`@name` for the abstract namespace) and waits for a `READY=1` datagram
before it counts the service as started. A datagram is newline-separated `KEY=VALUE`
assignments. Outside systemd (no variable, as in a container) every call is a no-op that
returns False; a failed send never raises, because a daemon must not die for want of a
supervisor. Also: `STOPPING=1` on shutdown, `STATUS=` for `systemctl status`, `RELOADING=1`
(with MONOTONIC_USEC) around a reload, `WATCHDOG=1` keep-alives at half of $WATCHDOG_USEC.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, MutableMapping
from typing import Final

ENV_SOCKET: Final = "NOTIFY_SOCKET"
ENV_WATCHDOG_USEC: Final = "WATCHDOG_USEC"
ENV_WATCHDOG_PID: Final = "WATCHDOG_PID"
SEND_TIMEOUT: Final = 1.0


def message(fields: Mapping[str, str]) -> bytes:
    """The datagram for these assignments; a newline in a value would start a new one."""
    lines = []
    for key, value in fields.items():
        if not key or "=" in key or "\n" in key:
            raise ValueError(f"invalid notify field name {key!r}")
        lines.append(f"{key}={' '.join(value.splitlines())}")
    return ("\n".join(lines) + "\n").encode()


def address(value: str | None) -> str | None:
    """The socket address in $NOTIFY_SOCKET: an absolute path, or `@name` (abstract)."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # systemd sends nothing else to AF_UNIX peers (vsock: is not ours)


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between WATCHDOG=1 keep-alives (half systemd's timeout), or None."""
    usec = environ.get(ENV_WATCHDOG_USEC, "")
    owner = environ.get(ENV_WATCHDOG_PID)
    if not usec.isdigit() or int(usec) == 0 or (owner and owner != str(pid)):
        return None
    return int(usec) / 2_000_000


class Notifier:
    """Sends notifications to the service manager, if there is one."""

    def __init__(self, socket_address: str | None) -> None:
        self.address = socket_address

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str], *, unset: bool = True) -> Notifier:
        """From $NOTIFY_SOCKET; by default the variable is removed so that scripts the
        daemon starts do not inherit it and speak for the daemon."""
        value = environ.pop(ENV_SOCKET, None) if unset else environ.get(ENV_SOCKET)
        return cls(address(value))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str) -> bool:
        """Send one datagram; True if the manager got it, False if none listens."""
        if self.address is None or not fields:
            return False
        data = message(fields)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(SEND_TIMEOUT)
                sock.sendto(data, self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """The group is started: systemd may start what is ordered after the unit."""
        fields = {"READY": "1"}
        if status is not None:
            fields["STATUS"] = status
        return self.send(**fields)

    def stopping(self, status: str | None = None) -> bool:
        fields = {"STOPPING": "1"}
        if status is not None:
            fields["STATUS"] = status
        return self.send(**fields)

    def reloading(self, monotonic_usec: int) -> bool:
        """A reload begins (systemd 253 wants CLOCK_MONOTONIC in µs with it); call
        ready() when it is done."""
        return self.send(RELOADING="1", MONOTONIC_USEC=str(monotonic_usec))

    def status(self, text: str) -> bool:
        """One line for `systemctl status`, e.g. `MASTER of vhid 42 on eth0`."""
        return self.send(STATUS=text)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG="1")
