"""The errors ifvip reports to users, each knowing how to print itself."""

from __future__ import annotations

from ifvip.record import record


@record(kw_only=False)
class ConfigError(Exception):
    """A problem in a configuration file, printed as ``path:line:col: message``."""

    path: str
    line: int
    col: int
    msg: str
    warning: bool = False
    # The interface an error is scoped to: ifup fails that interface and brings up the
    # others, as ifupdown does. None: the error concerns the file as a whole.
    interface: str | None = None

    def __str__(self) -> str:
        kind = "warning: " if self.warning else ""
        return f"{self.path}:{self.line}:{self.col}: {kind}{self.msg}"


class ApplyError(Exception):
    """An operation on the kernel or a hook failed while applying a plan."""


class DecodeError(ValueError):
    """Bytes on the wire are not a valid message; the text says why, with the values seen."""
