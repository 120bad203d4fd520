"""The adapter to the OpenStack API (the ``openstack`` client), one of the adapters to
what cannot run on this machine (libvirt and qemu-nbd are ``ops.hypervisor``).

Each adapter is a pair: pure *command builders* (argv lists, table-tested) and pure
*parsers* of the command's output (tested on recorded outputs in
``tests/data/openstack/``).  The adapter runs its commands through an executor
(local, SSH or dry-run), so there is exactly one place where ringmgr talks to each of
these tools.

None of them can run here: there is no OpenStack cloud, no libvirtd and no nbd-capable
hypervisor on the test machine.  The tests therefore drive the adapters through a
*recording executor* that returns recorded ``openstack ... -f json`` / ``virsh``
outputs.  That recording executor is the one fake the project allows, and it stands
only in front of these adapters; everything behind them (the runbooks' logic, the SQL
recovery against real MariaDB, the steps on real sshd hosts) is real.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ringmgr.errors import StepFailed, UsageError
from ringmgr.exec.base import CommandFailed, Executor
from ringmgr.ops.hypervisor import (  # noqa: F401  (re-exported for the compute runbooks)
    IMAGE_FORMATS, Domain, DomainDisk, QemuNbd, Virsh, first_partition, parse_mounts,
)

# Compute API microversions needed by the options used below.
MV_LIVE_MIGRATE_HOST = "2.30"   # server migrate --live-migration --host
MV_EVACUATE_HOST = "2.29"       # server evacuate --host
MV_FORCE_DOWN = "2.11"          # compute service set --down
MV_CHANGES_BEFORE = "2.66"      # server list --changes-before


# -- parsed records -------------------------------------------------------------
@dataclass(frozen=True)
class Server:
    id: str
    name: str
    status: str
    host: str | None = None
    task_state: str | None = None
    power_state: str | None = None
    instance_name: str | None = None
    volumes: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "status": self.status,
                "host": self.host, "task_state": self.task_state,
                "instance_name": self.instance_name, "volumes": list(self.volumes)}


@dataclass(frozen=True)
class ComputeService:
    id: str
    binary: str
    host: str
    status: str   # enabled / disabled
    state: str    # up / down
    zone: str = ""
    forced_down: bool | None = None

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"

    @property
    def up(self) -> bool:
        return self.state == "up"

    def to_json(self) -> dict:
        return {"id": self.id, "binary": self.binary, "host": self.host,
                "status": self.status, "state": self.state}


# -- parsers (pure) ---------------------------------------------------------------
def _load(text: str, what: str):
    try:
        return json.loads(text)
    except ValueError as e:
        raise StepFailed(f"{what}: not JSON ({e}); is the openstack client too old for -f json?")


def _get(d: dict, *keys, default=None):
    for k in keys:
        if k in d and d[k] not in (None, ""):
            return d[k]
    return default


def parse_server_list(text: str) -> list[Server]:
    """``openstack server list --long -f json``: a list of rows.

    Sample (trimmed)::

        [{"ID": "9b969a05-...", "Name": "web1", "Status": "ACTIVE",
          "Task State": null, "Power State": "Running", "Host": "c01.example.com",
          "Networks": {"private": ["10.0.0.5"]}, ...}]
    """
    rows = _load(text, "server list")
    if not isinstance(rows, list):
        raise StepFailed("server list: expected a JSON list")
    return [Server(id=r["ID"], name=r.get("Name", ""), status=r.get("Status", ""),
                   host=_get(r, "Host"), task_state=_get(r, "Task State"),
                   power_state=_get(r, "Power State")) for r in rows]


def parse_server_show(text: str) -> Server:
    """``openstack server show UUID -f json``: one object.

    Older clients use the API's extension names, newer (SDK-based) ones add short
    aliases; both are accepted.  Sample (trimmed)::

        {"id": "9b969a05-...", "name": "web1", "status": "ACTIVE",
         "OS-EXT-SRV-ATTR:host": "c02.example.com",
         "OS-EXT-SRV-ATTR:instance_name": "instance-0000274a",
         "OS-EXT-STS:task_state": null, "OS-EXT-STS:power_state": "Running",
         "volumes_attached": [{"id": "1f0fbf36-..."}]}
    """
    d = _load(text, "server show")
    if not isinstance(d, dict) or "id" not in d:
        raise StepFailed("server show: expected a JSON object with an id")
    vols = d.get("volumes_attached") or []
    if isinstance(vols, str):   # old clients: "id='1f0f...'\nid='...'"
        vols = [{"id": v} for v in re.findall(r"id='([^']+)'", vols)]
    return Server(
        id=d["id"], name=d.get("name", ""), status=d.get("status", ""),
        host=_get(d, "OS-EXT-SRV-ATTR:host", "compute_host"),
        task_state=_get(d, "OS-EXT-STS:task_state", "task_state"),
        power_state=_get(d, "OS-EXT-STS:power_state", "power_state"),
        instance_name=_get(d, "OS-EXT-SRV-ATTR:instance_name", "instance_name"),
        volumes=tuple(v["id"] for v in vols if isinstance(v, dict) and "id" in v))


def parse_service_list(text: str) -> list[ComputeService]:
    """``openstack compute service list -f json``.

    Sample::

        [{"ID": 7, "Binary": "nova-compute", "Host": "c01.example.com",
          "Zone": "nova", "Status": "enabled", "State": "up",
          "Updated At": "2026-11-24T22:51:03.000000"}]
    """
    rows = _load(text, "compute service list")
    if not isinstance(rows, list):
        raise StepFailed("compute service list: expected a JSON list")
    return [ComputeService(id=str(r.get("ID", "")), binary=r["Binary"], host=r["Host"],
                           status=r.get("Status", ""), state=r.get("State", ""),
                           zone=r.get("Zone", ""), forced_down=r.get("Forced Down"))
            for r in rows]


def parse_names(text: str, what: str) -> list[str]:
    """``openstack image list -f json`` / ``project list``: rows with ID and Name."""
    rows = _load(text, what)
    if not isinstance(rows, list):
        raise StepFailed(f"{what}: expected a JSON list")
    return [r.get("Name", r.get("ID", "")) for r in rows]


def parse_openrc(text: str) -> dict[str, str]:
    """The ``export OS_...=...`` lines of an openrc file (for checks, never logged)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"\s*(?:export\s+)?(OS_[A-Z_]+)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip().strip("'\"")
    return out


# -- the OpenStack adapter ----------------------------------------------------------
@dataclass
class OpenStack:
    """Runs ``openstack ... -f json`` through an executor, with the openrc sourced.

    The openrc file is sourced by a tiny ``sh -c`` wrapper on the host that runs the
    client, so credentials never appear in argv or in the audit log.  Commands that
    only read pass ``mutates=False`` so a dry run still runs them for real.

    Cannot run here (no cloud): tests give it a recording executor that returns
    recorded JSON from ``tests/data/openstack/``.
    """

    executor: Executor
    openrc: str | Path | None = None
    client: str = "openstack"

    # argv building -------------------------------------------------------------
    def argv(self, *args: str, json_out: bool = True, microversion: str | None = None
             ) -> list[str]:
        cmd = [self.client]
        if microversion:
            cmd += ["--os-compute-api-version", microversion]
        cmd += list(args)
        if json_out:
            cmd += ["-f", "json"]
        if self.openrc is None:
            return cmd
        return ["sh", "-c", '. "$0" && exec "$@"', str(self.openrc), *cmd]

    def _run(self, argv: list[str], mutates: bool, timeout: float | None = 120):
        res = self.executor.run(argv, mutates=mutates, timeout=timeout, check=False)
        if res.rc == 127 and "not found" in (res.stderr + res.stdout):
            raise StepFailed(f"[{res.host}] {res.stderr.strip() or 'command not found'}: "
                             f"install the OpenStack client there (pip install "
                             f"python-openstackclient) or put it on PATH")
        if not res.ok:
            raise CommandFailed(res)
        return res

    def _json(self, *args: str, microversion: str | None = None):
        return self._run(self.argv(*args, microversion=microversion), mutates=False).stdout

    # reads ---------------------------------------------------------------------
    def servers_on(self, host: str) -> list[Server]:
        return parse_server_list(self._json("server", "list", "--all-projects", "--long",
                                            "--host", host))

    def servers_in_status(self, status: str) -> list[Server]:
        return parse_server_list(self._json("server", "list", "--all-projects", "--long",
                                            "--status", status))

    def server(self, uuid: str) -> Server:
        return parse_server_show(self._json("server", "show", uuid))

    def compute_services(self, host: str | None = None,
                         binary: str | None = "nova-compute") -> list[ComputeService]:
        args = ["compute", "service", "list"]
        if host:
            args += ["--host", host]
        if binary:
            args += ["--service", binary]
        return parse_service_list(self._json(*args))

    def volume_services(self, binary: str | None = None) -> list[ComputeService]:
        """``openstack volume service list`` (rows have no ID; same shape otherwise)."""
        args = ["volume", "service", "list"] + (["--service", binary] if binary else [])
        return parse_service_list(self._json(*args))

    def compute_service(self, host: str) -> ComputeService:
        found = [s for s in self.compute_services(host) if s.host == host]
        if not found:
            raise UsageError(f"no nova-compute service on host {host!r} "
                             f"(see: openstack compute service list)")
        return found[0]

    def images(self) -> list[str]:
        return parse_names(self._json("image", "list"), "image list")

    def projects(self) -> list[str]:
        return parse_names(self._json("project", "list"), "project list")

    def all_servers(self) -> list[Server]:
        return parse_server_list(self._json("server", "list", "--all-projects", "--long"))

    def servers_unchanged_since(self, before: str) -> list[Server]:
        """Servers whose record (status, task state, ...) last changed at or before
        ``before`` (ISO 8601, e.g. ``2026-11-24T21:00:00Z``): nova's ``updated_at``."""
        return parse_server_list(self._json("server", "list", "--all-projects", "--long",
                                            "--changes-before", before,
                                            microversion=MV_CHANGES_BEFORE))

    def swift_stat(self) -> str:
        argv = ["swift", "stat"]
        if self.openrc is not None:
            argv = ["sh", "-c", '. "$0" && exec "$@"', str(self.openrc), *argv]
        return self._run(argv, mutates=False).stdout

    # changes -------------------------------------------------------------------
    def disable_service(self, host: str, reason: str) -> None:
        self._run(self.argv("compute", "service", "set", "--disable", "--disable-reason",
                            reason, host, "nova-compute", json_out=False), mutates=True)

    def enable_service(self, host: str) -> None:
        self._run(self.argv("compute", "service", "set", "--enable", host, "nova-compute",
                            json_out=False), mutates=True)

    def force_down(self, host: str) -> None:
        self._run(self.argv("compute", "service", "set", "--down", host, "nova-compute",
                            json_out=False, microversion=MV_FORCE_DOWN), mutates=True)

    def live_migrate(self, uuid: str, target: str, block_migrate: bool = False) -> None:
        args = ["server", "migrate", "--live-migration", "--host", target]
        if block_migrate:
            args.append("--block-migration")
        self._run(self.argv(*args, uuid, json_out=False, microversion=MV_LIVE_MIGRATE_HOST),
                  mutates=True)

    def evacuate(self, uuid: str, target: str) -> None:
        self._run(self.argv("server", "evacuate", "--host", target, uuid,
                            microversion=MV_EVACUATE_HOST), mutates=True)

    def reboot(self, uuid: str, hard: bool = False) -> None:
        args = ["server", "reboot"] + (["--hard"] if hard else []) + [uuid]
        self._run(self.argv(*args, json_out=False), mutates=True)

    def detach_volume(self, uuid: str, volume: str) -> None:
        self._run(self.argv("server", "remove", "volume", uuid, volume, json_out=False),
                  mutates=True)

    def attach_volume(self, uuid: str, volume: str, device: str | None) -> None:
        args = ["server", "add", "volume"]
        if device:
            args += ["--device", device]
        self._run(self.argv(*args, uuid, volume, json_out=False), mutates=True)
