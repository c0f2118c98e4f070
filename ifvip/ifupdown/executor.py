"""Carrying plan ops out on the kernel: `NetlinkExecutor`.

`NetlinkExecutor.apply(op)` does what `op.render()` says, through `netlink.Kernel` (one
AsyncIPRoute socket) for addresses, routes, rules and links, through /proc/sys for sysctls,
and under `/bin/sh -c` (with exactly the op's environment and a time limit) for Shell
and DHCP ops; RunParts ops choose and start the if-*.d scripts as run-parts would
(runparts.py), without a run-parts process. It returns the op as applied: `previous`
filled with what the kernel had before (sysctl values, link MTU/MAC/state, the route a
`replace` overwrote, the flags of a deleted address), which is what the journal keeps and
what `inverse()` restores.

A failure raises `OpError` with the reason the equivalent command would print (`File
exists`, `Cannot find device`...); whether it fails the stanza (`-` prefix, `|| true`) is
the caller's decision (`op.ignore_failure`), see engine.py.

Sysctls are written as files under /proc/sys, which shows the network namespace of the
process that opens them: run ifvip inside the namespace (`ip netns exec NS ifvip ifup ...`),
as the real ifup is run; `Kernel(netns=...)` only moves the netlink socket.

`apply_batch(ops)` sends a run of consecutive netlink ops (addresses, routes, rules) as one
`Kernel.batch()`, without waiting for each answer: the kernel handles the requests of one
socket in order, so the result is the same as one by one, and a thousand `up ip addr add`
lines cost one round of requests instead of a thousand round trips. With `stop` (ifup), the
first failure that counts ends the run as ifupdown's first failing line does: what was sent
after it is taken back at once, and only the ops before it stay applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final

from ifvip.errors import ApplyError
from ifvip.ifupdown import netlink, runparts
from ifvip.ifupdown.netlink import AF_INET, AF_INET6, SCOPES, Kernel, KernelError, Route, Rule
from ifvip.ifupdown.plan import (
    RT_TABLE_MAIN,
    AddAddress,
    AddLink,
    AddRoute,
    AddRule,
    DelAddress,
    DelLink,
    DelRoute,
    DelRule,
    FlushAddresses,
    LinkSettings,
    NoOp,
    Op,
    RenameLink,
    RunParts,
    SetInet6Mtu,
    SetLink,
    Shell,
    StartDhcp,
    StopDhcp,
    WaitDad,
    WriteSysctl,
)

HOOK_TIMEOUT: Final = 300.0  # seconds a hook, script directory or DHCP client may run
NOT_APPLIED: Final = "not applied: an earlier command failed"


class OpError(ApplyError):
    """An op failed; `reason` is what the equivalent command would have said."""

    def __init__(self, op: Op, reason: str, code: int | None = None) -> None:
        super().__init__(f"{op.render().strip()}: {reason}")
        self.op = op
        self.reason = reason
        self.errno = code


def _scope(value: str | None) -> int | None:
    if value is None:
        return None
    if value in SCOPES:
        return SCOPES[value]
    try:
        return int(value, 0)
    except ValueError:
        raise ValueError(f"unknown scope {value!r}") from None


def _family(number: int) -> int:
    return AF_INET6 if number == 6 else AF_INET


def _broadcast(address: netlink.Address, value: str | None) -> str | None:
    """ifupdown's `+`/`-` broadcast words (when the planner left them to `ip`)."""
    if value is None or address.version != 4:
        return value
    if value == "+":
        return str(address.network.broadcast_address)
    if value == "-":
        return str(address.network.network_address)
    return value


def route_of(op: AddRoute | DelRoute) -> Route:
    """The netlink Route an AddRoute/DelRoute means."""
    return Route(
        dst=None if op.dst is None else ipaddress.ip_network(op.dst, strict=False),
        family=_family(op.family),
        gateway=op.gateway,
        dev=op.dev,
        metric=op.metric,
        table=RT_TABLE_MAIN if op.table is None else op.table,
        proto=op.proto,
        scope=_scope(op.scope),
        src=op.src,
        onlink=op.onlink,
        type=op.type,
    )


def rule_of(op: AddRule | DelRule) -> Rule:
    return Rule(
        family=_family(op.family),
        priority=op.priority,
        src=None if op.src is None else ipaddress.ip_network(op.src, strict=False),
        dst=None if op.dst is None else ipaddress.ip_network(op.dst, strict=False),
        table=op.table,
        iifname=op.iifname,
        oifname=op.oifname,
        fwmark=op.fwmark,
    )


def _route_op(route: Route, like: AddRoute) -> AddRoute:
    scope = None if route.scope is None else str(route.scope)
    for name, number in SCOPES.items():
        if number == route.scope and name != "universe":
            scope = name
            break
    return AddRoute(
        family=6 if route.family == AF_INET6 else 4,
        dst=None if route.dst is None else str(route.dst),
        gateway=route.gateway,
        dev=route.dev,
        table=None if route.table == RT_TABLE_MAIN else route.table,
        metric=route.metric,
        src=route.src,
        onlink=route.onlink,
        proto=route.proto,
        scope=scope,
        type=route.type,
        replace=True,
        origin=like.origin,
    )


class NetlinkExecutor:
    """Applies ops to the kernel the process runs in (see the module docstring).

    `record` False skips the reads that only serve the journal (the flags of a deleted
    address, the route a replace overwrote): ifdown records nothing.

    A link's state (up, MTU, MAC, alias) is read once and then kept up to date from the
    executor's own changes, so the `ip link set dev eth0 up` of each of a thousand stanzas
    costs no netlink read. What is known is forgotten whenever something else may have
    changed a link: a hook, script or DHCP client has run, a link was made, renamed or
    deleted, or a change failed. So an executor that sets links serves one command (an
    ifup, an ifdown, one transition's engine run) and is then dropped; the daemon's
    long-lived policy-routing executor applies rules and routes only.
    """

    def __init__(
        self,
        kernel: Kernel,
        *,
        hook_timeout: float = HOOK_TIMEOUT,
        record: bool = True,
        stdout: int | None = None,
        stderr: int | None = None,
    ) -> None:
        self.kernel = kernel
        self.hook_timeout = hook_timeout
        self.record = record
        self.stdout = stdout
        self.stderr = stderr
        self._links: dict[str, netlink.LinkInfo] = {}  # by name, as this executor left them

    async def apply(self, op: Op) -> Op:
        try:
            return await self._apply(op)
        except KernelError as exc:
            raise OpError(op, _reason(exc), exc.errno) from None
        except (OSError, ValueError) as exc:
            code = getattr(exc, "errno", None)
            raise OpError(op, getattr(exc, "strerror", None) or str(exc), code) from None

    async def apply_batch(
        self, ops: Sequence[Op], *, stop: bool = False, record: bool | None = None
    ) -> list[Op | OpError]:
        """Apply `ops` in order, sending runs of netlink ops together; one result per op.

        Without `stop` a failed op does not stop the others (ifdown, and the undo of a
        failed ifup). With `stop`, the first failed op that counts (not `ignore_failure`)
        is the last one tried: every op after it is left undone (taken back if it was sent
        in the same batch), its result an OpError saying it was not applied; so exactly
        the ops before the failure are applied, as if they had run one by one.

        `record` False, for these ops only: nothing read for the journal (an undo records
        nothing), so address deletes go in the batch too instead of each reading the
        link's addresses first.
        """
        if record is not None and record != self.record:
            self.record, saved = record, self.record
            try:
                return await self.apply_batch(ops, stop=stop)
            finally:
                self.record = saved
        results: list[Op | OpError] = []
        index = 0
        while index < len(ops):
            end = index
            while end < len(ops) and self._batchable(ops[end], stop):
                end += 1
            if end > index:
                done = await self._send(ops[index:end], stop=stop)
            else:
                done = [await self._try(ops[index])]
            results.extend(done)
            tried = ops[index : index + len(done)]
            index += len(done)
            if stop and any(_counts(op, r) for op, r in zip(tried, done, strict=True)):
                break
        results.extend(OpError(op, NOT_APPLIED) for op in ops[len(results) :])
        return results

    def _batchable(self, op: Op, stop: bool) -> bool:
        """Whether `op` is one rtnetlink request whose answer is all we need.

        With `stop`, only additions: what is sent after a failure must be taken back
        exactly, and deleting what one added does that (re-adding a deleted route or
        address might not give back all it had)."""
        if isinstance(op, AddAddress | AddRule):
            return True
        if isinstance(op, AddRoute):
            return not op.replace
        if stop:
            return False
        return isinstance(op, DelRoute | DelRule) or (
            isinstance(op, DelAddress) and not self.record
        )

    async def _send(self, ops: Sequence[Op], *, stop: bool) -> list[Op | OpError]:
        built: list[tuple[Op, netlink.Request | OpError]] = []
        for op in ops:
            try:
                item: netlink.Request | OpError = await self._request(op)
            except KernelError as exc:
                item = OpError(op, _reason(exc), exc.errno)
            except ValueError as exc:
                item = OpError(op, str(exc))
            built.append((op, item))
            if stop and _counts(op, item):
                break  # nothing after it is sent
        requests = [item for _, item in built if not isinstance(item, OpError)]
        answers = iter(await self.kernel.batch(requests))
        results: list[Op | OpError] = []
        for op, item in built:
            if isinstance(item, OpError):
                results.append(item)
                continue
            error = next(answers)
            results.append(op if error is None else OpError(op, _reason(error), error.errno))
        if stop:
            await self._take_back(ops, results)
        return results

    async def _take_back(self, ops: Sequence[Op], results: list[Op | OpError]) -> None:
        """Undo, newest first, what succeeded after the first failure that counts; its
        result becomes NOT_APPLIED (an op whose undo fails stays applied, so the caller's
        rollback tries again and reports it)."""
        first = next((i for i, r in enumerate(results) if _counts(ops[i], r)), None)
        if first is None:
            return
        later = [
            i for i in range(len(results) - 1, first, -1) if not isinstance(results[i], OpError)
        ]
        inverses = [(i, ops[i].inverse()) for i in later]
        requests = []
        for i, inverse in inverses:
            if inverse is None:
                continue
            try:
                requests.append((i, await self._request(inverse)))
            except (KernelError, ValueError):
                continue
        answers = await self.kernel.batch([request for _, request in requests])
        for (i, _), error in zip(requests, answers, strict=True):
            if error is None:
                results[i] = OpError(ops[i], NOT_APPLIED)

    async def _request(self, op: Op) -> netlink.Request:
        """The one rtnetlink request `op` is."""
        k = self.kernel
        if isinstance(op, AddAddress | DelAddress):
            verb = "add" if isinstance(op, AddAddress) else "del"
            broadcast = op.broadcast
            if broadcast in ("+", "-"):
                broadcast = _broadcast(ipaddress.ip_interface(op.address), broadcast)
            return await k.address_message(
                verb,
                op.ifname,
                op.address,
                label=None if ":" in op.address.split("/", 1)[0] else op.label,
                broadcast=broadcast,
                peer=op.peer,
                scope=_scope(op.scope),
                nodad=op.nodad,
                preferred=op.preferred_lft,
                valid=op.valid_lft,
            )
        if isinstance(op, AddRoute):
            return await k.route_message(route_of(op), "replace" if op.replace else "add")
        if isinstance(op, DelRoute):
            return await k.route_message(route_of(op), "del")
        if isinstance(op, AddRule):
            return k.rule_message(rule_of(op), "add")
        if isinstance(op, DelRule):
            return k.rule_message(rule_of(op), "del")
        raise ValueError(f"no single request for {type(op).__name__}")

    async def _one(self, op: Op) -> None:
        (error,) = await self.kernel.batch([await self._request(op)])
        if error is not None:
            raise error

    async def _try(self, op: Op) -> Op | OpError:
        try:
            return await self.apply(op)
        except OpError as exc:
            return exc

    async def _apply(self, op: Op) -> Op:
        k = self.kernel
        if isinstance(op, NoOp):
            return op
        if isinstance(op, AddAddress | DelRoute | AddRule | DelRule):
            await self._one(op)
            return op
        if isinstance(op, DelAddress):
            return await self._del_address(op)
        if isinstance(op, FlushAddresses):
            family = None if op.family is None else _family(op.family)
            await k.flush_addresses(
                op.ifname, family, scope=_scope(op.scope), mngtmpaddr=op.mngtmpaddr
            )
            return op
        if isinstance(op, AddRoute):
            route = route_of(op)
            previous = None
            if op.replace and self.record:
                found = await k.find_route(route)
                previous = None if found is None else _route_op(found, op)
            await self._one(op)
            return replace(op, previous=previous) if previous is not None else op
        if isinstance(op, SetLink):
            before = await self._set_link(
                op.ifname, up=op.up, mtu=op.mtu, mac=op.address, alias=op.alias
            )
            return replace(
                op,
                previous=LinkSettings(
                    up=before.up, mtu=before.mtu, address=before.mac, alias=before.alias
                ),
            )
        if isinstance(op, SetInet6Mtu):
            link = await self._link(op.ifname)
            if link.mtu < op.mtu:
                await self._set_link(op.ifname, mtu=op.mtu)
                return replace(op, via="link", previous=str(link.mtu))
            name = f"net.ipv6.conf.{op.ifname.replace('.', '/')}.mtu"
            return replace(op, via="sysctl", previous=netlink.write_sysctl(name, str(op.mtu)))
        if isinstance(op, WriteSysctl):
            return replace(op, previous=netlink.write_sysctl(op.name, op.value))
        if isinstance(op, WaitDad):
            if op.address is None:
                await k.wait_link_local(op.ifname, op.attempts, op.interval)
            else:
                address = ipaddress.ip_interface(op.address)
                await k.wait_dad(op.ifname, address, op.attempts, op.interval)
            return op
        if isinstance(op, AddLink | DelLink | RenameLink):
            self._links.clear()
        if isinstance(op, AddLink):
            if op.exist_ok:
                names = {link.name for link in await k.links()}
                if op.ifname in names or (op.link is not None and op.link not in names):
                    return replace(op, created=False)  # ifupdown's VLAN step does nothing
            attrs = _link_attrs(op)
            if op.mode == "vlan" and op.link is not None:
                attrs["link"] = await k.index(op.link)
            await k.add_link(op.ifname, op.kind, **attrs)
            return replace(op, created=True)
        if isinstance(op, DelLink):
            await k.del_link(op.ifname)
            return op
        if isinstance(op, RenameLink):
            await k.rename_link(op.ifname, op.new)
            return op
        if isinstance(op, Shell | StartDhcp | StopDhcp):
            await self._run(op, ["/bin/sh", "-c", op.command], op.env)
            return op
        if isinstance(op, RunParts):
            await self._run_parts(op)
            return op
        raise OpError(op, f"ifvip cannot apply {type(op).__name__}")

    async def _link(self, ifname: str) -> netlink.LinkInfo:
        base = ifname.split(":", 1)[0]
        known = self._links.get(base)
        if known is None:
            known = self._links[base] = await self.kernel.link(base)
        return known

    async def _set_link(
        self,
        ifname: str,
        *,
        up: bool | None = None,
        mtu: int | None = None,
        mac: str | None = None,
        alias: str | None = None,
    ) -> netlink.LinkInfo:
        """`Kernel.set_link`, reading the link only when this executor does not already
        know it (see `_links`); returns how it was before."""
        base = ifname.split(":", 1)[0]
        before = await self._link(base)
        self._links.pop(base)  # unknown until the change is through
        await self.kernel.set_link(base, up=up, mtu=mtu, mac=mac, alias=alias, before=before)
        self._links[base] = replace(
            before,
            up=before.up if up is None else up,
            mtu=before.mtu if mtu is None else mtu,
            mac=before.mac if mac is None else mac.lower(),
            alias=before.alias if alias is None else alias,
        )
        return before

    async def _del_address(self, op: DelAddress) -> Op:
        address = ipaddress.ip_interface(op.address)
        found = None
        if self.record:
            found = next(
                (
                    a
                    for a in await self.kernel.addresses(op.ifname, _family(address.version))
                    if a.address == address
                ),
                None,
            )
        await self._one(op)
        if found is None:
            return op
        # What inverse() needs to put the address back as it was.
        return replace(
            op,
            peer=found.peer,
            broadcast=found.broadcast,
            label=found.label if address.version == 4 else None,
            scope=None if found.scope == 0 else str(found.scope),
            nodad=bool(found.flags & netlink.IFA_F_NODAD),
        )

    async def _run(self, op: Op, argv: list[str], env: tuple[tuple[str, str], ...]) -> None:
        loop = asyncio.get_running_loop()
        code = await self._spawn(op, argv, env, loop.time() + self.hook_timeout)
        if code != 0:
            reason = f"exit status {code}" if code > 0 else f"killed by signal {-code}"
            raise OpError(op, reason)

    async def _run_parts(self, op: RunParts) -> None:
        """The if-*.d scripts, chosen and reported as run-parts does (runparts.py), each
        started directly; the time limit is for the whole directory."""
        deadline = asyncio.get_running_loop().time() + self.hook_timeout
        err = 2 if self.stderr is None else self.stderr

        async def spawn(path: str) -> int:
            return await self._spawn(op, [path], op.env, deadline, umask=runparts.UMASK)

        def say(message: str) -> None:
            os.write(err, f"run-parts: {message}\n".encode(errors="surrogateescape"))

        code = await runparts.run_parts(
            op.directory, spawn, say, exit_on_error=op.exit_on_error, verbose=op.verbose
        )
        if code != 0:
            raise OpError(op, f"exit status {code}")

    async def _spawn(
        self,
        op: Op,
        argv: list[str],
        env: tuple[tuple[str, str], ...],
        deadline: float,
        *,
        umask: int = -1,
    ) -> int:
        """Run `argv` to its end (before `deadline`, loop time); its exit status, or
        -signal. OSError when it cannot be started."""
        # Hooks may rename, create, delete or change links: forget what is known of them.
        self.kernel.forget_indexes()
        self._links.clear()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=dict(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=self.stdout,
                stderr=self.stderr,
                start_new_session=True,
                umask=umask,
            )
        except OSError as exc:
            if isinstance(op, RunParts):
                raise  # run-parts reports it and goes on
            raise OpError(op, exc.strerror or str(exc), exc.errno) from None
        try:
            remaining = deadline - asyncio.get_running_loop().time()
            return await asyncio.wait_for(proc.wait(), max(remaining, 0.0))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise OpError(op, f"timed out after {self.hook_timeout:g} s") from None
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            raise
        finally:
            self.kernel.forget_indexes()
            self._links.clear()


def _link_attrs(op: AddLink) -> dict[str, Any]:
    if op.mode == "vlan":
        return {"link": op.link, "vlan_id": op.vlan_id}
    prefix = op.kind
    remote = None if op.remote in (None, "any") else op.remote
    attrs: dict[str, Any] = {
        f"{prefix}_remote": remote,
        f"{prefix}_local": op.local,
        f"{prefix}_ttl": op.ttl,
    }
    if op.mode == "ipip6":
        attrs["ip6tnl_proto"] = 4  # IPPROTO_IPIP
    elif op.mode == "ip6ip6":
        attrs["ip6tnl_proto"] = 41  # IPPROTO_IPV6
    if op.encaplimit is not None and op.kind == "ip6tnl":
        attrs["ip6tnl_encap_limit"] = op.encaplimit
    return attrs


def _counts(op: Op, result: Op | OpError | netlink.Request) -> bool:
    """Whether `result` is a failure that fails the stanza (see `apply_batch(stop=True)`)."""
    return isinstance(result, OpError) and not op.ignore_failure


def _reason(exc: KernelError) -> str:
    """The message `ip` prints for this error (as ifupdown users know them)."""
    return str(exc).rsplit(": ", 1)[-1]
