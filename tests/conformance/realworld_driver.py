"""One real-world interfaces file, every case, both programs: run by test_realworld.py.

Started as `ip netns exec NS unshare -m --propagation private PYTHON realworld_driver.py
FILES NAME WORK INTERFACES_D STUB_DIR`, so it is alone in its network namespace (veth
links named as the file's interfaces, made by the test) and in a private mount namespace,
where it binds INTERFACES_D on /etc/network/interfaces.d and, when STUB_DIR is not "-",
overlays it on /usr/sbin (a stub dhclient, as run.sh does). Then it runs run.sh's cases
with the real ifupdown 0.8.41 (children, `env -i PATH=... LANG=C`) and with ifvip
(in-process, under the same environment) and prints one JSON object: per case, each
program's exit code, stdout and stderr, and the acceptance of both.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
TIMEOUT = 60.0

Result = tuple[int, str, str]


def statements(files: Path, name: str, fragments: Path) -> list[list[str]]:
    """The words of every line of the file, then of its fragments (sorted), CRs dropped."""
    paths = [files / name]
    if fragments.is_dir():
        paths += sorted(p for p in fragments.iterdir() if p.is_file())
    lines: list[list[str]] = []
    for path in paths:
        text = path.read_bytes().decode("utf-8", "surrogateescape").replace("\r", "")
        lines.extend(line.split() for line in text.split("\n"))
    return [words for words in lines if words]


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def link_names(lines: list[list[str]]) -> list[str]:
    """run.sh's link_names: the links the file uses (aliases as their device, no VLANs)."""
    names: list[str] = []
    for words in lines:
        first, rest = words[0], words[1:]
        if first == "iface":
            names += rest[:1]
        elif first == "auto" or first.startswith("allow-"):
            names += rest
        elif first in ("vlan-raw-device", "vlan_raw_device"):
            names += rest[:1]
        elif re.fullmatch(r"bridge[-_]ports|bond[-_]slaves|slaves", first):
            names += rest
    devices = [n.split(":", 1)[0] for n in names]
    return _unique(
        [
            d
            for d in devices
            if re.fullmatch(r"[A-Za-z0-9_-]{1,15}", d) and d not in ("lo", "none", "all")
        ]
    )


def iface_names(lines: list[list[str]]) -> list[str]:
    """Names defined by iface stanzas or named literally by mapping stanzas, in order."""
    names: list[str] = []
    for words in lines:
        if words[0] == "iface" and len(words) >= 2:
            names.append(words[1])
        elif words[0] == "mapping":
            names += [w for w in words[1:] if not re.search(r"[*?\[/]", w)]
    return _unique(names)


def allow_classes(lines: list[list[str]]) -> list[str]:
    classes = {w[0][len("allow-") :] for w in lines if w[0].startswith("allow-") and len(w[0]) > 6}
    return sorted(classes - {"hotplug", "auto"})


def real(argv: list[str]) -> Result:
    done = subprocess.run(
        argv,
        capture_output=True,
        env={"PATH": PATH, "LANG": "C"},
        timeout=TIMEOUT,
        check=False,
    )
    decode = lambda b: b.decode("utf-8", "surrogateescape")  # noqa: E731
    return done.returncode, decode(done.stdout), decode(done.stderr)


def ifvip(argv: list[str], cache: str) -> Result:
    """ifvip's main() in this process, with the environment `env -i` gives a child."""
    from ifvip.cli import main

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({"PATH": PATH, "LANG": "C", "IFVIP_CACHE_DIR": cache})
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, out.getvalue(), err.getvalue()


def run_file(files: Path, name: str, work: Path) -> dict[str, object]:
    fragments = files / f"{name}.d"
    lines = statements(files, name, fragments)
    cache = str(work / "cache")
    cases: dict[str, dict[str, Result]] = {}

    def both(key: str, state: str, args: list[str], ifupdown: str = "ifquery") -> None:
        state_r, state_c = work / f"{state}-r", work / f"{state}-c"
        state_r.mkdir(exist_ok=True)
        state_c.mkdir(exist_ok=True)
        real_argv = [ifupdown, "-i", name, "--state-dir", str(state_r), *args]
        mine = [ifupdown, "-i", name, "--state-dir", str(state_c), *args]
        cases[key] = {"ifupdown": real(real_argv), "ifvip": ifvip(mine, cache)}

    # (a) ifquery
    both("q:list", "sq", ["--list"])
    both("q:list-allow-hotplug", "sq", ["--list", "--allow", "hotplug"])
    for cls in allow_classes(lines):
        both(f"q:list-allow-{cls}", "sq", ["--list", "--allow", cls])
    listed = [
        line
        for key, results in cases.items()
        if key.startswith("q:list")
        for line in results["ifupdown"][1].split("\n")
    ]
    names = _unique([n for n in [*listed, *iface_names(lines)] if n.strip()])
    for each in [w for n in names for w in n.split()]:  # run.sh's word splitting
        key = f"q:query-{each}"
        while key in cases:  # a name listed twice is asked twice, as run.sh does
            key += "+"
        both(key, "sq", [each])
    # (c) acceptance
    reads = "couldn't read interfaces file" not in cases["q:list"]["ifupdown"][2]
    check = ifvip(["check", "-i", name], cache)
    accept = {"ifupdown": reads, "ifvip": check[0] == 0, "check": check}
    # (b) plans, where ifupdown reads the file
    if reads:
        both("p:ifup-n-a", "sp", ["-n", "-v", "-a", "--no-scripts"], "ifup")
        if any(w[0] == "allow-hotplug" for w in lines):
            args = ["-n", "-v", "-a", "--allow", "hotplug", "--no-scripts"]
            both("p:ifup-n-allow-hotplug", "sp", args, "ifup")
        defined = iface_names(lines)
        if defined:
            both("p:ifup-n-names", "sp", ["-n", "-v", "--no-scripts", *defined], "ifup")
        recorded = work / "sd"
        recorded.mkdir()
        real(["ifup", "-i", name, "--state-dir", str(recorded), "--no-act-commands", "-a",
              "--no-scripts"])  # fmt: skip
        for suffix in ("r", "c"):
            shutil.copytree(recorded, work / f"sd-{suffix}")
        both("p:ifdown-n-a", "sd", ["-n", "-v", "-a", "--no-scripts"], "ifdown")
    return {"cases": cases, "accept": accept}


def main() -> None:
    files, name, work, interfaces_d, stub = sys.argv[1:6]
    if Path("/etc/network/interfaces.d").is_dir():
        subprocess.run(["mount", "--bind", interfaces_d, "/etc/network/interfaces.d"], check=True)
    if stub != "-":
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={stub}:/usr/sbin", "/usr/sbin"],
            check=True,
        )
    os.chdir(files)
    print(json.dumps(run_file(Path(files), name, Path(work))))


if __name__ == "__main__":
    main()
