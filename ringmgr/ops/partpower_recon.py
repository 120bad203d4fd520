"""The one recon request the partition-power increase needs, until the cluster-wide
recon client takes over: ``GET http://IP:PORT/recon/WHAT`` -> parsed JSON."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


class ReconError(Exception):
    pass


def recon_get(ip: str, port: int, what: str, timeout: float = 5.0):
    """JSON from the recon middleware of the server at ip:port; ReconError naming the
    server when it does not answer or answers something else."""
    host = f"[{ip}]" if ":" in ip else ip
    url = f"http://{host}:{port}/recon/{what}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read(4 * 1024 * 1024))
    except urllib.error.HTTPError as e:
        raise ReconError(f"{ip}:{port}: /recon/{what} answered HTTP {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ReconError(f"{ip}:{port}: /recon/{what}: {reason}") from None
    except ValueError:
        raise ReconError(f"{ip}:{port}: /recon/{what} did not answer JSON") from None
