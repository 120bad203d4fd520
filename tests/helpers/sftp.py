"""Upload a file to a test host over an executor's own SSH connection (SFTP).

ringmgr itself never uploads over SFTP (push streams the rings on its node script's
stdin); tests use this to put fixtures on a host through the same connection.
"""

from __future__ import annotations

import io


def put(ex, data: bytes, remote_path: str) -> int:
    sftp = ex.connect().client.open_sftp()
    try:
        sftp.putfo(io.BytesIO(data), remote_path, file_size=len(data), confirm=True)
    finally:
        sftp.close()
    return len(data)
