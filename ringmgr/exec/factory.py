"""The one place an executor is made: ``executor_for(config, host, *, dry_run)``.

Every host operation (replace-disk, drive-audit, reboot-node, push and verify, the
compute and controller runbooks, the OpenStack client on this admin host) gets its
executor here, so the transport, the dry-run recorder and the capability check are
decided once:

* the transport: ``TRANSPORTS[name]``, named by the host's ``transport`` (ringmgr.toml:
  the node's or proxy's ``transport`` key, or ``[defaults]``'s; an unknown name is a
  config error, ``check_transports``) when it has one, else ``local`` for a host whose
  address is ``localhost`` (a single-machine setup) and ``ssh`` otherwise;
* ``needs``: the capabilities the caller uses beyond ``run`` (``STREAM`` for push);
  a transport without them is skipped for ``ssh`` when the host was not given one
  explicitly, else refused in one line;
* ``dry_run``: the executor is wrapped in a ``DryRunExecutor`` (read-only commands
  run, state-changing ones are recorded as ``HostStep`` values).

A transport is a callable ``(config, host, known_hosts) -> Executor``; adding one is
one module plus one entry here (see docs/architecture.md).  Tests replace the
transport (``App.transport``), never this function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from ringmgr.exec.base import DryRunExecutor, Executor, NotCapable

if TYPE_CHECKING:
    from ringmgr.config import Config, Host
    from ringmgr.exec.ssh import KnownHosts

LOCAL_ADDRESSES = ("localhost", "local")

Transport = Callable[["Config", "Host", "KnownHosts | None"], Executor]


def _local(config: "Config", host: "Host", known_hosts=None) -> Executor:
    from ringmgr.exec.local import LocalExecutor

    return LocalExecutor(host=host.name)


def _ssh(config: "Config", host: "Host", known_hosts=None) -> Executor:
    from ringmgr.exec.ssh import SSHExecutor

    return SSHExecutor(host, config.ssh, known_hosts=known_hosts)


TRANSPORTS: dict[str, Transport] = {"local": _local, "ssh": _ssh}


@dataclass(frozen=True)
class AdHocHost:
    """A host that is not in the config (a compute host, a controller): its name,
    its address, and the [ssh] settings for the rest."""

    name: str
    host: str
    ssh_port: int | None = None
    swift_dir: str = "/etc/swift"
    owner: str = "root"


ADMIN = AdHocHost("localhost", "localhost")     # this machine (the OpenStack client)


def host_for(config: "Config", name: str, address: str | None = None):
    """A configured node or proxy (by address, else name), or an ad-hoc host."""
    address = address or name
    return config.hosts().get(address) or AdHocHost(name, address)


def check_transport(config: "Config", host) -> None:
    """Refuse a host whose configured ``transport`` is none of ``TRANSPORTS``: a
    ConfigError naming the file and the key it was set by."""
    name = getattr(host, "transport", None)
    if name is None or name in TRANSPORTS:
        return
    from ringmgr.errors import ConfigError

    where = getattr(host, "transport_key", "") or f"host {host.name}"
    prefix = f"{config.path}: " if getattr(config, "path", None) else ""
    raise ConfigError(f"{prefix}{where}: unknown transport {name!r} (known: "
                      f"{', '.join(sorted(TRANSPORTS))})")


def check_transports(config: "Config") -> None:
    """Every configured host's transport is a known one (checked when the CLI loads
    the config, so a typo is refused before anything runs)."""
    for host in config.hosts().values():
        check_transport(config, host)


def transport_name(host, needs: frozenset[str] = frozenset()) -> str:
    explicit = getattr(host, "transport", None)
    if explicit:
        return explicit
    if host.host in LOCAL_ADDRESSES and not needs - _capabilities("local"):
        return "local"
    return "ssh"


def _capabilities(name: str) -> frozenset[str]:
    from ringmgr.exec.local import LocalExecutor
    from ringmgr.exec.ssh import SSHExecutor

    return {"local": LocalExecutor.capabilities,
            "ssh": SSHExecutor.capabilities}.get(name, frozenset())


def default_transport(config: "Config", host, known_hosts: "KnownHosts | None" = None, *,
                      needs: frozenset[str] = frozenset()) -> Executor:
    """The configured transport's executor for ``host`` (not yet wrapped for a dry run)."""
    check_transport(config, host)
    return TRANSPORTS[transport_name(host, needs)](config, host, known_hosts)


def executor_for(config: "Config", host, *, dry_run: bool,
                 needs: Iterable[str] = (), known_hosts: "KnownHosts | None" = None,
                 transport: Transport | None = None) -> Executor:
    """The executor for ``host`` (a config ``Host``/``Node`` or ``AdHocHost``).

    ``transport`` replaces the configured one (tests set ``App.transport``).
    """
    needs = frozenset(needs)
    if transport is None:
        ex = default_transport(config, host, known_hosts, needs=needs)
    else:
        ex = transport(config, host, known_hosts)
    missing = needs - frozenset(ex.capabilities)
    if missing:
        ex.close()
        raise NotCapable(f"[{host.name}] its transport ({type(ex).__name__}) cannot "
                         f"{', '.join(sorted(missing))}, which this operation needs")
    return dry(ex, dry_run)


def dry(ex: Executor, dry_run: bool) -> Executor:
    """``ex`` itself, or in a dry run the recorder around it (the one place a dry run
    is wrapped: also for an executor a caller already holds)."""
    if not dry_run or isinstance(ex, DryRunExecutor):
        return ex
    return DryRunExecutor(inner=ex)


def close_all(*executors: Executor | None) -> None:
    """Close each executor; a failure to close is not the operation's failure."""
    for ex in executors:
        if ex is None:
            continue
        try:
            ex.close()
        except Exception:  # noqa: BLE001 - the connection may be gone already
            pass
