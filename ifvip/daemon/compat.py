"""The configuration forms of the images ifvip replaces, translated onto `ifvip run` options.

`translate(argv, environ)` runs before click parses anything. It recognises a form only by
a shape ordinary ifvip command lines never have (positional arguments where `ifvip run`
takes none, or no arguments at all with an image's own variables set) and returns the
equivalent `ifvip run ...` argv; any other argv comes back unchanged. A form with bad
values still translates (the run options then report them, exit 78); a form that cannot be
translated raises ConfigProblems, each line naming the variable or argument.

kubernetize/ucarp (`ghcr.io/kubernetize/ucarp`), environment only, no arguments (or `run`):
    `UCARP_ADDR` (required), `UCARP_MASKLEN`, `UCARP_INTERFACE`, `UCARP_SRCIP`,
    `UCARP_VHID` (default 1), `UCARP_PASS` (default `password`) / `UCARP_PASS_FILE`,
    `UCARP_GARP_TIMEOUT`, `UCARP_BROADCAST` are read by `ifvip run` itself (its UCARP_*
    aliases); the translation adds the image's defaults for the vhid and password and its
    policy routing: `UCARP_RTABLE` → `--rtable`, `UCARP_RTABLE_NETWORK_LENGTH` →
    `--rtable-network-length`, `UCARP_GATEWAY` → `--rtable-gateway`,
    `UCARP_RULE_PRIORITY` → `--rule-priority` (daemon/policy.py: rule `from VIP lookup N`,
    the VIP's network route and a default route in table N on MASTER, removed on BACKUP).

titpetric/ucarp, `VIP BROADCAST PASSWORD [ADDR/LEN ...]` with `DEV` (CARP interface,
    default eth0), `IPDEV` (the public interface, default eth1), `VHID` (default: the first
    byte of md5 of "VIP\\n", as the image's `echo $VIP | md5sum`) and `OPTS` (more ucarp
    options, passed through after ours so they win). The image runs ucarp with `-z
    --deadratio=5`. When an interfaces file (default `/etc/network/interfaces`, or
    `IFVIP_INTERFACES`) has a stanza for IPDEV, MASTER is `ifup IPDEV` and BACKUP
    `ifdown IPDEV` (`--interfaces FILE --manage IPDEV`), as the image's up.sh/down.sh;
    otherwise the VIP (/32) and each ADDR/LEN go on IPDEV. BROADCAST is not needed: the
    kernel derives it from the prefix.

solnet-cloud/docker-keepalived, `[options] TRACK_IFACE PRIORITY ADDR/LEN/IFACE ...` with
    `--router-name/-n`, `--master/-m`, `--auth-pass/-p` (default 12345678), `--vrid/-v`
    (default 1), `--exclude/-x ADDR/LEN/IFACE` (repeatable; added on MASTER but not
    advertised: keepalived's virtual_ipaddress_excluded), `--check-interval/-i`,
    `--check-rise/-r`, `--check-fall/-f` (2/2/2), `--override-check/-o SCRIPT` (a script
    in /ka-data/scripts/) or `--enable-check/-e URL` (HTTP 200): VRRPv2, advert 1 s,
    `--vip ADDR/LEN@IFACE` per include. `--router-name` names the host in keepalived's
    mails only, and `--master` (keepalived's `state MASTER`) only shortens the first
    election: both are accepted and dropped (a note says so).

Rancher docker-keepalived (NeoAssist, lework, zhangguanzhang), environment only:
    `VIRTUAL_IP`, `VIRTUAL_MASK`, `VRID`, `INTERFACE` (all required), `CHECK_SCRIPT`, or
    `CHECK_PORT` with `CHECK_IP` (`any` or absent: something listens on the port, as the
    image's `ss -ltn`; an address: a connect to it), `AUTH_PASS` (default blahblah):
    VRRPv2, priority 100, advert 1 s, nopreempt, the check every 1 s with timeout 1 s,
    rise 2, fall 2, GARP delay 1 s and refresh 60 s, as its keepalived.conf. Its `status`
    command is `ifvip status`, which needs no translation.

osixia/keepalived (docker-keepalived 2.0.20 and the container-keepalived 2.3.4 rewrite),
    environment only, recognised by any of `KEEPALIVED_VIRTUAL_IPS` (required),
    `KEEPALIVED_INTERFACE` (default eth0), `KEEPALIVED_ROUTER_ID` (default 51),
    `KEEPALIVED_PRIORITY` (default 150), `KEEPALIVED_UNICAST_PEERS`, `KEEPALIVED_PASSWORD`
    (default d0cker), `KEEPALIVED_STATE` (MASTER or BACKUP, default BACKUP),
    `KEEPALIVED_NOTIFY` (2.0.20) / `KEEPALIVED_NOTIFY_SCRIPT` (2.3.4): the image's single
    `vrrp_instance VI_1`, i.e. VRRPv2, advert 1 s, `nopreempt`, PASS authentication
    (`--auth-pass`), each peer a `--unicast-peer` (our own address among them is filtered,
    osixia#33; no peers: multicast), each virtual IP a `--vip`, the notify script a
    keepalived-style `--notify`. A list is written space-separated (2.3.4), as the
    baseimage's `#PYTHON2BASH:['a', 'b']` (2.0.20 on `docker run`), or as the names of
    variables holding one entry each (2.0.20's YAML lists become `NAME_ROW_1 NAME_ROW_2`,
    read through as startup.sh's `${!entry}`). A virtual IP is keepalived's
    `ADDR[/LEN] [dev IFACE] [label NAME]` (one entry per variable for the long form;
    without a length /32 or /128, as keepalived; `label` is dropped with a note).
    `KEEPALIVED_STATE` only shortens keepalived's first election: accepted and dropped;
    `KEEPALIVED_COMMAND_LINE_ARGUMENTS`, `KEEPALIVED_CONF` and `KEEPALIVED_CONF_TEMPLATE`
    (a keepalived.conf of your own) are not read, and a note says so.

`--nonlocal-bind` is ifvip's own option (daemon/policy.py), the Rancher README's advice.

Option names this module emits that `ifvip run` must define: those of daemon/checks.py
(`--check-http`, `--check-tcp`, `--check-script`, `--check-interval`, `--check-rise`,
`--check-fall`, `--check-timeout`), of daemon/policy.py (`--rtable`,
`--rtable-network-length`, `--rtable-gateway`, `--rule-priority`) and `--vip-excluded`.
"""

from __future__ import annotations

import ast
import ipaddress
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ifvip.daemon.settings import ConfigProblems
from ifvip.wire.digest import md5

INTERFACES_FILE: Final = "/etc/network/interfaces"
SOLNET_SCRIPTS: Final = "/ka-data/scripts/"

SOLNET_VALUED: Final = {
    "--router-name": "router_name",
    "-n": "router_name",
    "--auth-pass": "auth_pass",
    "-p": "auth_pass",
    "--vrid": "vrid",
    "-v": "vrid",
    "--exclude": "exclude",
    "-x": "exclude",
    "--check-interval": "interval",
    "-i": "interval",
    "--check-rise": "rise",
    "-r": "rise",
    "--check-fall": "fall",
    "-f": "fall",
    "--override-check": "override",
    "-o": "override",
    "--enable-check": "url",
    "-e": "url",
}
SOLNET_FLAGS: Final = {"--master": "master", "-m": "master"}

KUBERNETIZE_RTABLE: Final = (
    ("UCARP_RTABLE", "--rtable"),
    ("UCARP_RTABLE_NETWORK_LENGTH", "--rtable-network-length"),
    ("UCARP_GATEWAY", "--rtable-gateway"),
    ("UCARP_RULE_PRIORITY", "--rule-priority"),
)
RANCHER_REQUIRED: Final = ("VIRTUAL_IP", "VIRTUAL_MASK", "VRID", "INTERFACE")
OSIXIA_GROUP: Final = (
    "KEEPALIVED_VIRTUAL_IPS",
    "KEEPALIVED_INTERFACE",
    "KEEPALIVED_ROUTER_ID",
    "KEEPALIVED_UNICAST_PEERS",
)
OSIXIA_UNREAD: Final = (
    "KEEPALIVED_COMMAND_LINE_ARGUMENTS",
    "KEEPALIVED_CONF",
    "KEEPALIVED_CONF_TEMPLATE",
)
PYTHON2BASH: Final = "#PYTHON2BASH:"
# ifvip's own commands: argv starting with one of these (but `run`) is never translated.
COMMANDS: Final = frozenset(
    {"run", "ifup", "ifdown", "ifquery", "check", "status", "demo", "decode"}
)
# ifvip's own group variables: with one of them set, the environment is ifvip's, not an image's.
OWN_GROUP_ENV: Final = ("IFVIP_ADDR", "IFVIP_VIP", "IFVIP_INTERFACES")


@dataclass(frozen=True)
class Translation:
    form: str | None  # None: ordinary ifvip argv, unchanged
    argv: list[str]
    notes: list[str] = field(default_factory=list)  # dropped or defaulted; never a secret


def _stanza_in(path: str, name: str) -> bool:
    """Whether the interfaces file at `path` has a stanza for `name` (False if unreadable)."""
    if not os.path.isfile(path):
        return False
    from ifvip.interfaces.loader import load  # noqa: PLC0415 - only the titpetric form reads it

    try:
        return bool(load(path, no_loopback=True).stanzas(name))
    except OSError:
        return False


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _solnet_vip(text: str) -> str | None:
    """`203.0.113.10/24/eth0` → `203.0.113.10/24@eth0` (None if it is not that shape)."""
    parts = text.split("/")
    if len(parts) != 3 or not all(parts):
        return None
    try:
        ipaddress.ip_address(parts[0])
    except ValueError:
        return None
    return f"{parts[0]}/{parts[1]}@{parts[2]}"


def titpetric_vhid(vip: str) -> int:
    """The image's default: `printf '%d' 0x$(echo $VIP | md5sum | cut -b1-2)`."""
    return md5((vip + "\n").encode())[0]


# ------------------------------------------------------------------------- the forms


def _titpetric(
    args: Sequence[str], environ: Mapping[str, str], stanza_in: Callable[[str, str], bool]
) -> Translation:
    vip, _broadcast, password, *extra = args
    dev = environ.get("DEV") or "eth0"
    ipdev = environ.get("IPDEV") or "eth1"
    vhid = environ.get("VHID") or str(titpetric_vhid(vip))
    argv = ["run", "--interface", dev, "--vhid", vhid, "--pass", password, "--deadratio", "5"]
    notes = []
    interfaces = environ.get("IFVIP_INTERFACES") or INTERFACES_FILE
    if stanza_in(interfaces, ipdev):
        argv += ["--addr", vip, "--interfaces", interfaces, "--manage", ipdev]
        notes.append(f"titpetric: MASTER runs ifup {ipdev} from {interfaces}, BACKUP ifdown")
        if extra:
            notes.append("titpetric: the extra addresses come from the interfaces file")
    else:
        argv += ["--vip", f"{vip}/32@{ipdev}"]
        argv += [a for text in extra for a in ("--vip", f"{text}@{ipdev}")]
    try:
        argv += shlex.split(environ.get("OPTS", ""))
    except ValueError as exc:
        raise ConfigProblems([f"OPTS: cannot split '{environ['OPTS']}': {exc}"]) from None
    return Translation("titpetric", argv, notes)


def _solnet_parse(args: Sequence[str]) -> tuple[dict[str, list[str]], list[str]] | None:
    """solnet's argparse grammar: (options, positionals), or None if it does not fit."""
    options: dict[str, list[str]] = {}
    positionals: list[str] = []
    items = list(args)
    while items:
        item = items.pop(0)
        name, eq, inline = item.partition("=")
        if item in SOLNET_FLAGS:
            options.setdefault(SOLNET_FLAGS[item], []).append("1")
        elif name in SOLNET_VALUED and name.startswith("--") and eq:
            options.setdefault(SOLNET_VALUED[name], []).append(inline)
        elif item in SOLNET_VALUED:
            if not items:
                return None
            options.setdefault(SOLNET_VALUED[item], []).append(items.pop(0))
        elif item.startswith("-") and item != "-":
            return None
        else:
            positionals.append(item)
    if len(positionals) < 3 or not positionals[1].lstrip("-").isdigit():
        return None
    if not all(_solnet_vip(p) for p in positionals[2:]):
        return None
    return options, positionals


def _solnet(options: dict[str, list[str]], positionals: list[str]) -> Translation:
    track, priority, *includes = positionals
    problems = []
    if "override" in options and "url" in options:
        problems.append("--override-check and --enable-check: use one (solnet allows one)")
    for single in ("router_name", "auth_pass", "vrid", "interval", "rise", "fall", "override"):
        if len(options.get(single, [])) > 1:
            problems.append(f"solnet: {single.replace('_', '-')} is given twice")
    if problems:
        raise ConfigProblems(problems)
    notes = []

    def one(key: str, default: str | None = None) -> str | None:
        values = options.get(key)
        return values[0] if values else default

    vrid = one("vrid")
    if vrid is None:
        notes.append("solnet: no --vrid, using 1 as the image does")
    password = one("auth_pass")
    if password is None:
        notes.append("solnet: no --auth-pass, using the image's built-in password (insecure)")
    argv = [
        "run",
        "--protocol",
        "vrrp",
        "--vrrp-version",
        "2",
        "--interface",
        track,
        "--priority",
        priority,
        "--vrid",
        vrid or "1",
        "--auth-pass",
        password or "12345678",
        "--advert-int",
        "1",
    ]
    argv += [a for text in includes for a in ("--vip", _solnet_vip(text) or text)]
    for text in options.get("exclude", []):
        converted = _solnet_vip(text)
        if converted is None:
            raise ConfigProblems([f"--exclude: '{text}' is not ADDR/LEN/IFACE"])
        argv += ["--vip-excluded", converted]
    checks = False
    if (script := one("override")) is not None:
        path = script if script.startswith("/") else SOLNET_SCRIPTS + script
        argv += ["--check-script", path]
        checks = True
    if (url := one("url")) is not None:
        argv += ["--check-http", url]
        checks = True
    if checks:
        for key, option in (("interval", "interval"), ("rise", "rise"), ("fall", "fall")):
            argv += [f"--check-{option}", one(key, "2") or "2"]
    if "router_name" in options:
        notes.append("solnet: --router-name only names the host in keepalived's mail: dropped")
    if "master" in options:
        notes.append("solnet: --master (state MASTER) dropped: the highest priority wins")
    return Translation("solnet", argv, notes)


def _rancher(environ: Mapping[str, str]) -> Translation:
    missing = [name for name in RANCHER_REQUIRED if not environ.get(name)]
    if missing:
        raise ConfigProblems(
            [
                f"{name}: required by the Rancher keepalived form (VIRTUAL_IP is set)"
                for name in missing
            ]
        )
    interface = environ["INTERFACE"]
    notes = []
    password = environ.get("AUTH_PASS")
    if not password:
        password = "blahblah"
        notes.append("rancher: no AUTH_PASS, using the image's built-in password")
    argv = [
        "run",
        "--protocol",
        "vrrp",
        "--vrrp-version",
        "2",
        "--interface",
        interface,
        "--vrid",
        environ["VRID"],
        "--priority",
        "100",
        "--advert-int",
        "1",
        "--nopreempt",
        "--auth-pass",
        password,
        "--vip",
        f"{environ['VIRTUAL_IP']}/{environ['VIRTUAL_MASK']}@{interface}",
        "--garp-master-delay",
        "1",
        "--garp-master-refresh",
        "60",
    ]
    script = environ.get("CHECK_SCRIPT")
    port = environ.get("CHECK_PORT")
    where = environ.get("CHECK_IP", "any")
    if script:
        argv += ["--check-script", script]
    elif port:
        if where in ("", "any", "*", "0.0.0.0"):
            argv += ["--check-tcp", port]
        else:
            host = f"[{where}]" if ":" in where else where
            argv += ["--check-tcp", f"{host}:{port}"]
    elif environ.get("CHECK_IP"):
        raise ConfigProblems(["CHECK_IP: needs CHECK_PORT"])
    if script or port:
        argv += ["--check-interval", "1", "--check-timeout", "1"]
        argv += ["--check-rise", "2", "--check-fall", "2"]
    return Translation("rancher", argv, notes)


def osixia_list(name: str, environ: Mapping[str, str]) -> list[str]:
    """The entries of an osixia list variable (see the module docstring for the forms)."""
    text = environ.get(name, "").strip()
    if text.startswith(PYTHON2BASH):
        try:
            value = ast.literal_eval(text[len(PYTHON2BASH) :].strip())
        except (ValueError, SyntaxError):
            raise ConfigProblems([f"{name}: cannot read the #PYTHON2BASH: list"]) from None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigProblems([f"{name}: #PYTHON2BASH: must be a list of strings"])
        return [v.strip() for v in value if v.strip()]
    entries = []
    for word in text.split():
        # startup.sh's `${!entry}`: a word naming a set variable stands for its value.
        referred = environ.get(word, "").strip() if word.isidentifier() else ""
        entries.append(referred or word)
    return entries


def _osixia_vip(entry: str, interface: str, notes: list[str]) -> str:
    """keepalived's `ADDR[/LEN] [dev IFACE] [label NAME]` as `--vip ADDR/LEN@IFACE`."""
    words = entry.split()
    address, _slash, length = words[0].partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ConfigProblems([f"KEEPALIVED_VIRTUAL_IPS: '{entry}' is not an address"]) from None
    device = interface
    rest = words[1:]
    while rest:
        keyword = rest.pop(0)
        if keyword not in ("dev", "label") or not rest:
            raise ConfigProblems(
                [f"KEEPALIVED_VIRTUAL_IPS: '{entry}': only 'dev IFACE' and 'label NAME' follow"]
            )
        value = rest.pop(0)
        if keyword == "dev":
            device = value
        else:
            notes.append(f"osixia: label {value} of {address} dropped")
    return f"{ip}/{length or ip.max_prefixlen}@{device}"


def _osixia(environ: Mapping[str, str]) -> Translation:
    notes: list[str] = []
    vips = osixia_list("KEEPALIVED_VIRTUAL_IPS", environ)
    if not vips:
        raise ConfigProblems(
            ["KEEPALIVED_VIRTUAL_IPS: required by the osixia/keepalived form (no default here)"]
        )
    interface = environ.get("KEEPALIVED_INTERFACE") or "eth0"
    argv = ["run", "--protocol", "vrrp", "--vrrp-version", "2", "--advert-int", "1"]
    argv += ["--nopreempt", "--interface", interface]
    for variable, option, default in (
        ("KEEPALIVED_ROUTER_ID", "--vrid", "51"),
        ("KEEPALIVED_PRIORITY", "--priority", "150"),
    ):
        value = environ.get(variable)
        if not value:
            notes.append(f"osixia: no {variable}, using the image's {default}")
        argv += [option, value or default]
    password = environ.get("KEEPALIVED_PASSWORD")
    if not password:
        password = "d0cker"
        notes.append("osixia: no KEEPALIVED_PASSWORD, using the image's built-in password")
    argv += ["--auth-pass", password]
    for peer in osixia_list("KEEPALIVED_UNICAST_PEERS", environ):
        argv += ["--unicast-peer", peer]
    for entry in vips:
        argv += ["--vip", _osixia_vip(entry, interface, notes)]
    notify = environ.get("KEEPALIVED_NOTIFY_SCRIPT") or environ.get("KEEPALIVED_NOTIFY")
    if notify:
        argv += ["--notify", notify]
    state = environ.get("KEEPALIVED_STATE", "").strip()
    if state and state.upper() not in ("MASTER", "BACKUP"):
        raise ConfigProblems([f"KEEPALIVED_STATE: '{state}' is neither MASTER nor BACKUP"])
    if state.upper() == "MASTER":
        notes.append("osixia: KEEPALIVED_STATE MASTER dropped: the highest priority wins")
    for variable in OSIXIA_UNREAD:
        if environ.get(variable):
            notes.append(f"osixia: {variable} is not read (the group comes from KEEPALIVED_*)")
    return Translation("osixia", argv, notes)


def _kubernetize(environ: Mapping[str, str]) -> Translation:
    argv = ["run"]
    notes = []
    if not (environ.get("UCARP_VHID") or environ.get("IFVIP_VHID")):
        argv += ["--vhid", "1"]
        notes.append("kubernetize: no UCARP_VHID, using the image's 1")
    secret = ("UCARP_PASS", "UCARP_PASS_FILE", "IFVIP_PASS", "IFVIP_PASSFILE")
    if not any(environ.get(name) for name in secret):
        argv += ["--pass", "password"]
        notes.append("kubernetize: no UCARP_PASS, using the image's built-in password (insecure)")
    for variable, option in KUBERNETIZE_RTABLE:
        if environ.get(variable):
            argv += [option, environ[variable]]
    return Translation("kubernetize", argv, notes)


# ------------------------------------------------------------------------- detection


def explain(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    stanza_in: Callable[[str, str], bool] = _stanza_in,
    commands: frozenset[str] = COMMANDS,
) -> Translation:
    """Recognise an image's form and translate it, with notes; else argv unchanged.

    Positional forms are recognised with or without a leading `run` (which takes no
    positional arguments); environment forms only for an empty argv or a bare `run`.
    """
    args = list(argv)
    if args and args[0] in commands and args[0] != "run":
        return Translation(None, args)
    rest = args[1:] if args[:1] == ["run"] else args
    if rest:
        if len(rest) >= 3 and _is_ipv4(rest[0]) and _is_ipv4(rest[1]):
            return _titpetric(rest, environ, stanza_in)
        parsed = _solnet_parse(rest)
        if parsed is not None:
            return _solnet(*parsed)
        return Translation(None, args)
    if any(environ.get(name) for name in OWN_GROUP_ENV):
        return Translation(None, args)
    forms = {
        "VIRTUAL_IP": ("Rancher", bool(environ.get("VIRTUAL_IP")), _rancher),
        "UCARP_ADDR": ("kubernetize", bool(environ.get("UCARP_ADDR")), _kubernetize),
        "KEEPALIVED_*": (
            "osixia",
            any(environ.get(name) for name in OSIXIA_GROUP),
            _osixia,
        ),
    }
    present = [(key, form) for key, (form, on, _f) in forms.items() if on]
    if len(present) > 1:
        keys = " and ".join(key for key, _form in present)
        names = " and the ".join(form for _key, form in present)
        raise ConfigProblems([f"{keys}: both the {names} form are set; unset one"])
    if present:
        return forms[present[0][0]][2](environ)
    return Translation(None, args)


def translate(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The argv for click: an image's form translated onto `ifvip run`, else unchanged."""
    return explain(argv, environ).argv
