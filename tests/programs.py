"""The real programs the tests run beside ifvip, and the marks that skip without them.

Root and namespace tests skip only when not root; interop tests also when Debian's
program is not installed (CI installs them: .ci/run).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Final

import pytest

IFVIP: Final = str(Path(sys.executable).with_name("ifvip"))
UCARP: Final = shutil.which("ucarp") or "/usr/sbin/ucarp"
KEEPALIVED: Final = shutil.which("keepalived") or "/usr/sbin/keepalived"

AS_ROOT: Final = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")
NEEDS_UCARP: Final = pytest.mark.skipif(
    not Path(UCARP).exists(), reason="Debian's ucarp is not installed"
)
NEEDS_KEEPALIVED: Final = pytest.mark.skipif(
    not Path(KEEPALIVED).exists(), reason="Debian's keepalived is not installed"
)
# The marks of a test module that runs a real peer in namespaces.
INTEROP: Final = [pytest.mark.root, pytest.mark.interop, AS_ROOT]
