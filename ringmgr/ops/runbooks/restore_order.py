"""Complete-failure restoration order (operations guide, "Handling a Complete Failure").

The guide's example priority list is the default; ``[openstack].restore_order`` in
ringmgr.toml replaces it with lines of ``"PRIORITY SERVICE"``.  ``--check`` runs, in
order, the checks that can be automated for each entry (the cloud's own API through
the OpenStack adapter, the databases through their URLs); the others are listed as
manual.  The first failing entry is the one to restore next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ringmgr.errors import ConfigError, RingmgrError
from ringmgr.ops.runbooks.controller import CheckResult

GUIDE_ORDER: tuple[tuple[int, str], ...] = (
    (1, "Internal network connectivity"),
    (2, "Backing storage services"),
    (3, "Public network connectivity for user virtual machines"),
    (4, "nova-compute, nova-network, cinder hosts"),
    (5, "User virtual machines"),
    (10, "Message queue and database services"),
    (15, "Keystone services"),
    (20, "cinder-scheduler"),
    (21, "Image Catalog and Delivery services"),
    (22, "nova-scheduler services"),
    (98, "cinder-api"),
    (99, "nova-api services"),
    (100, "Dashboard node"),
)


@dataclass(frozen=True)
class Entry:
    priority: int
    service: str

    @property
    def check(self) -> str | None:
        """The automated check for this entry, by keyword in its name."""
        s = self.service.lower()
        for key, words in CHECK_KEYWORDS:
            if all(w in s for w in words):
                return key
        return None

    def to_json(self) -> dict:
        return {"priority": self.priority, "service": self.service, "check": self.check}


CHECK_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("compute-hosts", ("nova-compute",)),
    ("user-vms", ("user virtual machines",)),
    ("databases", ("database",)),
    ("keystone", ("keystone",)),
    ("cinder-scheduler", ("cinder-scheduler",)),
    ("images", ("image",)),
    ("nova-scheduler", ("nova-scheduler",)),
    ("cinder-api", ("cinder-api",)),
    ("nova-api", ("nova-api",)),
)


def entries(override: tuple[str, ...] | list[str] | None = None) -> list[Entry]:
    if not override:
        return [Entry(p, s) for p, s in GUIDE_ORDER]
    out = []
    for i, line in enumerate(override):
        m = re.fullmatch(r"\s*(\d+)\s+(\S.*?)\s*", line)
        if not m:
            raise ConfigError(f"openstack.restore_order[{i}]: {line!r} is not "
                              f"\"PRIORITY SERVICE\" (e.g. \"10 Message queue and database "
                              f"services\")")
        out.append(Entry(int(m.group(1)), m.group(2)))
    return sorted(out, key=lambda e: e.priority)


def _services_up(api, binary: str, volume: bool = False) -> str:
    from ringmgr.errors import StepFailed

    rows = api.volume_services(binary) if volume else api.compute_services(None, binary)
    rows = [s for s in rows if s.binary == binary]
    if not rows:
        raise StepFailed(f"no {binary} service registered")
    down = [f"{s.host} ({s.state})" for s in rows if s.enabled and not s.up]
    if down:
        raise StepFailed(f"{binary} down on {', '.join(down)}")
    return f"{len(rows)} {binary} service(s) up"


def _databases(db_urls: dict[str, str | None]) -> str:
    from ringmgr.errors import StepFailed
    from ringmgr.ops.runbooks import sqlrecover

    checked = []
    for key, url in db_urls.items():
        if not url:
            continue
        con = sqlrecover.connect(sqlrecover.parse_db_url(url, key))
        try:
            with con.cursor() as cur:
                cur.execute("SELECT 1")
        finally:
            con.close()
        checked.append(key)
    if not checked:
        raise StepFailed("no database URL in [openstack] (nova_db, neutron_db, cinder_db)")
    return f"{', '.join(checked)} answer"


def _vms(api) -> str:
    from ringmgr.errors import StepFailed

    servers = api.all_servers()
    bad = [f"{s.name or s.id} ({s.status})" for s in servers
           if s.status not in ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "SHELVED_OFFLOADED")]
    if bad:
        raise StepFailed(f"{len(bad)} of {len(servers)} not running: {', '.join(bad[:10])}")
    return f"{len(servers)} server(s), none in error"


def checkers(api, db_urls: dict[str, str | None]) -> dict[str, Callable[[], str]]:
    return {
        "compute-hosts": lambda: _services_up(api, "nova-compute"),
        "user-vms": lambda: _vms(api),
        "databases": lambda: _databases(db_urls),
        "keystone": lambda: f"{len(api.projects())} project(s)",
        "cinder-scheduler": lambda: _services_up(api, "cinder-scheduler", volume=True),
        "images": lambda: f"{len(api.images())} image(s)",
        "nova-scheduler": lambda: _services_up(api, "nova-scheduler"),
        "cinder-api": lambda: f"{len(api.volume_services(None))} volume service(s) listed",
        "nova-api": lambda: f"{len(api.all_servers())} server(s) listed",
    }


def check_in_order(items: list[Entry], fns: dict[str, Callable[[], str]]) -> list[CheckResult]:
    out = []
    for e in items:
        name = f"{e.priority:>3} {e.service}"
        if e.check is None:
            out.append(CheckResult(name, None, "check by hand"))
            continue
        try:
            out.append(CheckResult(name, True, fns[e.check]()))
        except RingmgrError as err:
            out.append(CheckResult(name, False, str(err)))
    return out
