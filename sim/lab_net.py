"""The lab's network: a claim on one 127.0.<net>.0/24 of loopback per lab, so that two
labs (an operator's and the end-to-end tests') can run at once."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from sim import lab_configs as cfg
from sim.lab_procs import LabError

CLAIMS = Path("/run/ringmgr-lab")
FIRST_NET = 5


def _claim_stale(link: Path, state: str) -> bool:
    """A claim may be taken over only when its lab's state directory is gone (or is ours).

    A lab whose state is still there may still hold loop disks or daemons: its own
    ``down`` releases the claim.
    """
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        return False
    return target == state or not os.path.isdir(target)


def _addresses_free(net: int) -> bool:
    for host, port in [(f"127.0.{net}.{cfg.PROXY_HOST_OCTET}", cfg.PROXY_PORT),
                       (f"127.0.{net}.2", cfg.PORTS["object"])]:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def claim_net(state: str, wanted: int | None) -> int:
    """Reserve a 127.0.<net>.0/24 for this lab (a symlink in /run/ringmgr-lab).

    Two labs (the lead's e2e tests and an operator's) may run at once; each gets its own
    /24.  A claim whose state directory is gone is stale and is taken over; a net whose
    proxy or first node address is already bound by anyone is skipped.
    """
    CLAIMS.mkdir(parents=True, exist_ok=True)
    candidates = [wanted] if wanted else range(FIRST_NET, 250)
    for net in candidates:
        link = CLAIMS / f"127.0.{net}"
        if link.is_symlink() and _claim_stale(link, state):
            link.unlink(missing_ok=True)
        try:
            os.symlink(state, link)
        except FileExistsError:
            continue
        if _addresses_free(net):
            return net
        link.unlink()
    taken = f" (127.0.{wanted} is taken)" if wanted else ""
    raise LabError(f"no free 127.0.N.0/24 for the lab{taken}")


def release_net(state: str, net: int) -> None:
    link = CLAIMS / f"127.0.{net}"
    try:
        if os.readlink(link) == state:
            link.unlink()
    except (FileNotFoundError, OSError):
        pass


def release_claims_of(state: str) -> None:
    """Every claim pointing at ``state`` (an ``up`` that failed before lab.json)."""
    for link in CLAIMS.glob("127.0.*") if CLAIMS.exists() else []:
        if link.is_symlink() and os.readlink(link) == state:
            link.unlink()
