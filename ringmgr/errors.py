"""The exception hierarchy, and the exit code each maps to at the CLI boundary.

Exit codes follow swift-ring-builder: 0 ok, 1 warning (or nothing could be done
yet), 2 error (bad input, refused, failed step; nothing left half-changed).
"""

EXIT_OK = 0
EXIT_WARNING = 1
EXIT_ERROR = 2


class RingmgrError(Exception):
    """An error the operator must act on: exit 2, nothing half-written."""

    exit_code = EXIT_ERROR


class UsageError(RingmgrError):
    """Bad input: unknown node or device, a bad weight, a bad flag combination."""


class ConfigError(RingmgrError):
    """ringmgr.toml is missing, unreadable or does not match the schema."""


class BuilderError(RingmgrError):
    """A builder or ring file is missing, truncated or corrupt."""


class Refused(RingmgrError):
    """A safety check refused the operation; the message says how to proceed."""


class LockHeld(Refused):
    """Another process holds the builder directory's lock."""


class StepFailed(RingmgrError):
    """A command on a host failed."""


class NotYet(RingmgrError):
    """Nothing could be done yet (e.g. the min_part_hours gate): exit 1, nothing written."""

    exit_code = EXIT_WARNING
