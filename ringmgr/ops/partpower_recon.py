"""The recon requests of the partition-power increase, through the recon client's
settings (``ringmgr.live.recon``: ``[recon]`` scheme, ports, timeouts).

The relinker's progress is read raw (``/recon/relinker`` per device *and policy*,
``ops/relinker.py``): the client's parsed form keeps only the device-level totals,
which carry no step, so relink progress could not be told from cleanup progress.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request


class ReconError(Exception):
    pass


def recon_getter(config):
    """``get(ip, port, what) -> JSON`` for the object servers of ``config``."""
    from ringmgr.live.recon import ReconClient, Server

    client = ReconClient(config.recon)
    port_override = config.recon.ports.get("object")
    timeout = config.recon.connect_timeout + config.recon.timeout

    def get(ip: str, port: int, what: str):
        url = client.url(Server(ip, "object", ip, port_override or port), what)
        return recon_get_url(url, timeout)

    return get


def recon_get_url(url: str, timeout: float = 5.0):
    """JSON from one recon URL; ReconError naming it when there is no (JSON) answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read(4 * 1024 * 1024))
    except urllib.error.HTTPError as e:
        raise ReconError(f"{url}: HTTP {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        raise ReconError(f"{url}: {getattr(e, 'reason', e)}") from None
    except ValueError:
        raise ReconError(f"{url}: not JSON") from None
