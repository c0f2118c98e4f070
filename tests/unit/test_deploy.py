"""The deployment files in deploy/ and the Dockerfile: they parse, carry what a deployment
needs (host network, the two capabilities, read-only root, a password only from a file)
and start ifvip with a command line and environment that `ifvip run` accepts."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from ifvip.cli import cli

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "systemd" / "ifvip@.service"
INTERFACES_UNIT = DEPLOY / "systemd" / "ifvip-interfaces.service"
CAPS = ["NET_ADMIN", "NET_RAW"]
RUN = cli.commands["run"]
# Variables the deployment files set that are not `ifvip run` options.
NOT_OPTIONS = {"IFVIP_ARGS"}


def _run_envvars() -> set[str]:
    names: set[str] = set()
    for param in RUN.params:
        envvar = param.envvar
        if isinstance(envvar, str):
            names.add(envvar)
        elif envvar:
            names.update(envvar)
    return names


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in list(os.environ):
        if name.startswith(("IFVIP_", "UCARP_", "KEEPALIVED_")):
            monkeypatch.delenv(name)
    yield monkeypatch


def _resolve(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], env: Mapping[str, str]
) -> dict[str, Any]:
    """The parameters `ifvip ARGV` would run with in ENV; fails on a usage error."""
    assert argv[0] == "run", argv
    unknown = {k for k in env if k.startswith("IFVIP_")} - _run_envvars() - NOT_OPTIONS
    assert not unknown, f"not `ifvip run` variables: {sorted(unknown)}"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with RUN.make_context("run", argv[1:]) as ctx:
        params = dict(ctx.params)
    # Every deployment supervises the process: it must stay in the foreground.
    assert not params.get("daemonize"), "-B/--daemonize under a supervisor"
    return params


# ------------------------------------------------------------------------------ systemd


def _unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit file: sections of (key, value) in order, keys may repeat."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"assignment outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not an assignment: {line}"
        current.append((key.strip(), value.strip()))
    return sections


def _values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [value for name, value in section if name == key]


def _env_file(path: Path) -> dict[str, str]:
    """systemd's EnvironmentFile= syntax: KEY=VALUE, # comments, optional quotes."""
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), line
        env[key] = value.strip().strip('"')
    return env


def _exec_argv(command: str, env: Mapping[str, str]) -> list[str]:
    """ExecStart= words after systemd's $VAR (split) and ${VAR} (one word) expansion."""
    words: list[str] = []
    for word in command.split():
        if word.startswith("${") and word.endswith("}"):
            words.append(env.get(word[2:-1], ""))
        elif word.startswith("$"):
            words.extend(env.get(word[1:], "").split())
        else:
            words.append(word)
    return words


def test_unit_is_a_hardened_notify_service_after_the_network() -> None:
    unit = _unit(UNIT.read_text())
    assert set(unit) == {"Unit", "Service", "Install"}
    assert "network-online.target" in _values(unit["Unit"], "After")
    assert "network-online.target" in _values(unit["Unit"], "Wants")
    service = unit["Service"]
    assert _values(service, "Type") == ["notify"]
    assert _values(service, "NotifyAccess") == ["main"]
    assert _values(service, "CapabilityBoundingSet") == ["CAP_NET_ADMIN CAP_NET_RAW"]
    assert _values(service, "ProtectSystem") == ["strict"]
    assert _values(service, "NoNewPrivileges") == ["yes"]
    assert _values(service, "RuntimeDirectory") == ["ifvip/%i"]
    assert "IFVIP_STATE_DIR=%t/ifvip/%i" in _values(service, "Environment")
    assert _values(service, "EnvironmentFile") == ["-/etc/default/ifvip", "/etc/ifvip/%i.env"]
    assert _values(service, "RestartPreventExitStatus") == ["78"]
    assert _values(service, "KillSignal") == ["SIGTERM"]
    # ifvip writes network sysctls: /proc/sys must stay writable.
    assert not _values(service, "ProtectKernelTunables")
    assert _values(unit["Install"], "WantedBy") == ["multi-user.target"]


def test_unit_starts_a_valid_ifvip_run(clean_env: pytest.MonkeyPatch) -> None:
    service = _unit(UNIT.read_text())["Service"]
    (start,) = _values(service, "ExecStart")
    env = {
        **_env_file(DEPLOY / "systemd" / "ifvip.default"),
        **_env_file(DEPLOY / "systemd" / "vip42.env"),
        "IFVIP_STATE_DIR": "/run/ifvip/vip42",
    }
    argv = _exec_argv(start, env)
    assert argv[0] == "/opt/ifvip/bin/ifvip"
    params = _resolve(clean_env, argv[1:], env)
    assert params["interface"] == "eth0"
    assert params["vhid"] == "42"
    assert params["passfile"] == "/etc/ifvip/vip42.pass"
    assert params["preempt"] is True
    assert params["vips"] == ("198.51.100.100/24",)
    assert params["state_dir"] == "/run/ifvip/vip42"
    assert params["password"] is None


def test_unit_takes_ucarp_arguments_from_ifvip_args(clean_env: pytest.MonkeyPatch) -> None:
    # The example's commented IFVIP_ARGS line, used instead of the IFVIP_* variables.
    text = (DEPLOY / "systemd" / "vip42.env").read_text()
    (line,) = [raw[1:].strip() for raw in text.splitlines() if raw.startswith("# IFVIP_ARGS=")]
    args = line.partition("=")[2]
    (start,) = _values(_unit(UNIT.read_text())["Service"], "ExecStart")
    params = _resolve(clean_env, _exec_argv(start, {"IFVIP_ARGS": args})[1:], {})
    assert (params["interface"], params["addr"], params["masklen"]) == (
        "eth0",
        "198.51.100.100",
        "24",
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize(
    ("unit", "name"),
    [(UNIT, "ifvip@vip42.service"), (INTERFACES_UNIT, "ifvip-interfaces.service")],
    ids=["template", "interfaces"],
)
def test_systemd_accepts_the_unit(tmp_path: Path, unit: Path, name: str) -> None:
    instance = tmp_path / name
    instance.write_text(unit.read_text())
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(instance)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # The only complaint allowed: ifvip is not installed in /opt/ifvip on this machine.
    complaints = [
        line
        for line in done.stderr.splitlines()
        if line.strip() and "/opt/ifvip/bin/ifvip is not executable" not in line
    ]
    assert complaints == []


# ------------------------------------------------------------------------------ compose


def _interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message}."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op == ":-":
            return arg or ""
        raise AssertionError(f"${{{name}}} must be set: {arg}")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, value)


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    return data


def test_compose_runs_two_hosts_with_host_network_and_two_capabilities() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"ifvip-a", "ifvip-b"}
    profiles = [profile for service in services.values() for profile in service["profiles"]]
    assert sorted(profiles) == ["host-a", "host-b"]
    for service in services.values():
        assert service["network_mode"] == "host"
        assert service["cap_add"] == CAPS
        assert service["cap_drop"] == ["ALL"]
        assert "privileged" not in service
        assert service["read_only"] is True
        assert "/run" in service["tmpfs"] and "/tmp" in service["tmpfs"]
        assert service["stop_signal"] == "SIGTERM"
        assert service["secrets"] == ["carp_pass"]
    assert compose["secrets"] == {"carp_pass": {"file": "./carp-pass.txt"}}
    skews = {name: int(s["environment"]["IFVIP_ADVSKEW"]) for name, s in services.items()}
    assert skews["ifvip-a"] < skews["ifvip-b"]  # host A is preferred


def test_compose_commands_are_valid_ifvip_runs(clean_env: pytest.MonkeyPatch) -> None:
    for service in _compose()["services"].values():
        env = {k: _interpolate(str(v), {}) for k, v in service["environment"].items()}
        params = _resolve(clean_env, list(service["command"]), env)
        assert params["passfile"] == "/run/secrets/carp_pass"
        assert params["interface"] == "eth0"
        assert params["vips"] == ("198.51.100.100/24",)
    assert _interpolate("${IFVIP_INTERFACE:-eth0}", {"IFVIP_INTERFACE": "ens3"}) == "ens3"


# --------------------------------------------------------------------------- kubernetes


def _manifests() -> list[dict[str, Any]]:
    text = (DEPLOY / "kubernetes" / "daemonset.yaml").read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _daemonset() -> dict[str, Any]:
    (daemonset,) = [doc for doc in _manifests() if doc["kind"] == "DaemonSet"]
    return daemonset


def test_daemonset_host_network_capabilities_secret_file_node_selector() -> None:
    daemonset = _daemonset()
    assert daemonset["apiVersion"] == "apps/v1"
    spec = daemonset["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["nodeSelector"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"], "add": CAPS}
    assert security["privileged"] is False
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert volumes[mounts["/run"]]["emptyDir"]["medium"] == "Memory"
    assert volumes[mounts["/tmp"]]["emptyDir"]["medium"] == "Memory"
    env = {item["name"]: item.get("value") for item in container["env"]}
    passfile = Path(env["IFVIP_PASSFILE"])
    secret = volumes[mounts[str(passfile.parent)]]["secret"]
    assert secret["secretName"] and secret["defaultMode"] == 0o400
    assert container["livenessProbe"]["exec"]["command"] == ["/usr/local/bin/ifvip-healthcheck"]
    # No Secret with its data in the file: the password is created beside it.
    assert not [doc for doc in _manifests() if doc["kind"] == "Secret"]


def test_daemonset_starts_a_valid_ifvip_run(clean_env: pytest.MonkeyPatch) -> None:
    (container,) = _daemonset()["spec"]["template"]["spec"]["containers"]
    downward = {"NODE_IP": "198.51.100.11"}  # what status.hostIP gives the pod
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = re.sub(
                r"\$\(([A-Z_]+)\)", lambda m: downward[m.group(1)], item["value"]
            )
        else:
            assert item["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    params = _resolve(clean_env, list(container["args"]), env)
    assert params["srcip"] == "198.51.100.11"
    assert params["passfile"] == "/etc/ifvip/secret/password"
    assert params["vips"] == ("198.51.100.100/24",)


# ------------------------------------------------------------------ every deploy file


def _deploy_files() -> list[Path]:
    return [*sorted(p for p in DEPLOY.rglob("*") if p.is_file()), REPO / "Dockerfile"]


def test_no_file_grants_privilege_or_holds_a_password() -> None:
    plain = re.compile(
        r"(?:--pass[ =]|--auth-pass[ =]|IFVIP_PASS\s*[=:]|UCARP_PASS\s*[=:]"
        r"|IFVIP_AUTH_PASS\s*[=:]|stringData|^\s*password:\s*\S)",
        re.MULTILINE,
    )
    # ucarp's -p PASSWORD, on the lines that are ifvip command lines.
    short = re.compile(r"(?:^|\s)-p\s+\S")
    for path in _deploy_files():
        text = path.read_text()
        # Prose may say "no --privileged"; no command line may use it.
        runs = [line for line in text.splitlines() if "--privileged" in line and "run " in line]
        assert not runs, (path, runs)
        assert "privileged: true" not in text, path
        assert not plain.findall(text), (path, plain.findall(text))
        commands = [line for line in text.splitlines() if re.search(r"ifvip run|IFVIP_ARGS", line)]
        assert not [line for line in commands if short.search(line)], path


def test_dockerfile_base_capabilities_and_no_volume() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "ARG BASE=debian:bookworm-slim" in text
    assert "FROM ${BASE}" in text
    assert "--cap-add NET_ADMIN --cap-add NET_RAW" in text
    # /run must be a fresh tmpfs, never a volume that brings back a stale state.
    assert not [line for line in text.splitlines() if line.startswith("VOLUME")]
    assert 'ENTRYPOINT ["/usr/local/bin/ifvip-entrypoint"]' in text
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert next(line for line in ignore if line and not line.startswith("#")) == "*"


def test_entrypoint_forms_reach_the_right_ifvip_command(tmp_path: Path) -> None:
    """The image's entrypoint, with a stand-in `ifvip` that prints its arguments."""
    stub = tmp_path / "ifvip"
    stub.write_text('#!/bin/sh\nprintf "%s|" "$@"\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    script = str(DEPLOY / "container" / "entrypoint.sh")
    cases = {
        (): "run|",
        ("run", "-i", "eth0"): "run|-i|eth0|",
        ("-i", "eth0", "-v", "3"): "run|-i|eth0|-v|3|",
        ("ucarp", "-i", "eth0"): "run|-i|eth0|",
        ("--version",): "--version|",
        ("-h",): "-h|",
        ("ifquery", "-l"): "ifquery|-l|",
        ("check", "-i", "f"): "check|-i|f|",
    }
    for args, expected in cases.items():
        done = subprocess.run(
            ["sh", script, *args], capture_output=True, text=True, env=env, timeout=10, check=False
        )
        assert (done.returncode, done.stdout) == (0, expected), args


def test_resolve_rejects_what_ifvip_run_would(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(click.UsageError):
        _resolve(clean_env, ["run", "--no-such-option"], {})
    with pytest.raises(AssertionError, match="not `ifvip run` variables"):
        _resolve(clean_env, ["run"], {"IFVIP_INTERFAC": "eth0"})


def _docker_runs(text: str) -> list[list[str]]:
    """The arguments after the image of every `docker run` in TEXT (comments, continuations)."""
    lines = [line.lstrip("#").strip() for line in text.splitlines()]
    joined, runs = "", []
    for line in lines:
        joined += " " + line
        if joined.endswith("\\"):
            joined = joined[:-1]
            continue
        if joined.lstrip().startswith("docker run"):
            words = shlex.split(joined)
            image = next(i for i, w in enumerate(words) if re.fullmatch(r"ifvip(:[\w.]+)?", w))
            runs.append(words[image + 1 :])
        joined = ""
    return runs


def test_documented_docker_runs_are_valid(clean_env: pytest.MonkeyPatch) -> None:
    for path in (REPO / "Dockerfile", DEPLOY / "README.md"):
        runs = _docker_runs(path.read_text())
        assert runs, path
        for args in runs:
            params = _resolve(clean_env, args, {})
            assert params["passfile"].startswith("/run/secrets/"), path


# ------------------------------------------------- every group of /etc/network/interfaces

HOOK = DEPLOY / "debian" / "ifvip-ifupdown"


def test_interfaces_unit_runs_every_group_of_the_file(clean_env: pytest.MonkeyPatch) -> None:
    from ifvip.daemon.launch import from_file_only

    unit = _unit(INTERFACES_UNIT.read_text())
    service = unit["Service"]
    # As hardened as the per-group unit, key for key (but the instance's own settings).
    same = {"EnvironmentFile", "RuntimeDirectory", "Environment", "ExecStart"}
    template = _unit(UNIT.read_text())["Service"]
    assert [kv for kv in service if kv[0] not in same] == [
        kv for kv in template if kv[0] not in same
    ]
    assert _values(service, "EnvironmentFile") == ["-/etc/default/ifvip"]
    assert _values(service, "RuntimeDirectory") == ["ifvip/interfaces"]
    (start,) = _values(service, "ExecStart")
    env = {"IFVIP_STATE_DIR": "/run/ifvip/interfaces"}
    argv = _exec_argv(start, env)
    assert argv[0] == "/opt/ifvip/bin/ifvip"
    params = _resolve(clean_env, argv[1:], env)
    assert params["interfaces_file"] == "/etc/network/interfaces"
    assert params["state_dir"] == "/run/ifvip/interfaces"
    assert from_file_only(params)
    assert _values(unit["Install"], "WantedBy") == ["multi-user.target"]


def test_ifupdown_hook_is_posix_sh_and_its_defaults_start_a_valid_run(
    clean_env: pytest.MonkeyPatch,
) -> None:
    from ifvip.daemon.launch import from_file_only

    assert HOOK.read_text().startswith("#!/bin/sh\n")
    assert os.access(HOOK, os.X_OK)
    checked = subprocess.run(
        ["dash", "-n", str(HOOK)], capture_output=True, timeout=10, check=False
    )
    assert checked.returncode == 0, checked.stderr
    # The settings file is shell, and the run the hook starts with them is one ifvip accepts.
    default = DEPLOY / "debian" / "ifvip-ifupdown.default"
    shown = subprocess.run(
        ["dash", "-c", f'. {default}; echo "$IFVIP|$INTERFACES|$STATE_DIR|$RUN_ARGS"'],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout.strip()
    ifvip, interfaces, state_dir, run_args = shown.split("|")
    assert (ifvip, interfaces) == ("/opt/ifvip/bin/ifvip", "/etc/network/interfaces")
    argv = ["run", "--interfaces", interfaces, "--up-list", f"{state_dir}/up"]
    params = _resolve(clean_env, [*argv, "--state-dir", f"{state_dir}/run", *run_args.split()], {})
    assert from_file_only(params) and params["up_list"] == f"{state_dir}/up"
    assert 'setsid "$IFVIP" run --interfaces "$INTERFACES" --up-list "$LIST"' in (HOOK.read_text())
