"""The exception hierarchy, and the exit code and JSON ``reason`` each maps to at the
CLI boundary.

Exit codes follow swift-ring-builder: 0 ok, 1 warning (or nothing could be done
yet), 2 error (bad input, refused, failed step; nothing left half-changed).  The
``reason`` codes are the closed set documented in docs/json.md (``REASONS``).
"""

EXIT_OK = 0
EXIT_WARNING = 1
EXIT_ERROR = 2

# reason -> what it means; docs/json.md and docs/schema/envelope.json list the same set
REASONS = {
    "ok": "done as asked (or a check passed)",
    "nothing_to_do": "the state asked for is already there; nothing was written",
    "unbalanced": "written, but balance or dispersion is not yet what it can be",
    "replication_pending": "a step was written; the next one waits for min_part_hours "
                           "and a finished replication pass",
    "gate_closed": "min_part_hours blocks every move the change needs; nothing written",
    "replication_wait": "the next gradual step waits for a replication pass that started "
                        "after the last push; nothing written",
    "over_limit": "the next change cannot be split under --max-move; converge does it "
                  "only with --allow-over-limit; nothing written",
    "drain_stuck": "drained devices at weight 0 still hold assignments that swift's "
                   "rebalance moves none of; nothing written",
    "paused": "converge is paused ([converge].pause_file exists); nothing written",
    "outside_window": "outside [converge].window; nothing written",
    "step_limit": "[converge].max_steps_per_day reached; nothing written",
    "part_power": "only part_power differs: increase-part-power changes it; nothing written",
    "risk": "a safety check found a risk (e.g. stopping the node is not safe)",
    "check_failed": "a check found something to act on (rings differ, failing disks, ...)",
    "usage": "bad input: an unknown option, node or device, a missing argument, a bad value",
    "config": "ringmgr.toml is missing, unreadable or does not match the schema",
    "builder_error": "a builder or ring file is missing, truncated or corrupt",
    "refused": "a safety check refused, or the change was not confirmed",
    "locked": "another process holds the builder directory's lock",
    "failed": "a step on a host failed",
    "partly_installed": "a committed ring change could not be installed completely; "
                        "`ringmgr resume` finishes it",
    "aborted": "interrupted, or aborted at the prompt",
    "in_progress": "a long operation advanced (or is running on the hosts); more remains: "
                   "next[] says what to run and when",
    "internal_error": "a bug in ringmgr",
}


class RingmgrError(Exception):
    """An error the operator must act on: exit 2, nothing half-written.

    ``reason`` overrides the class's JSON reason code; ``not_before`` (a Unix time)
    says when the same command can succeed; ``next`` lists commands to run instead."""

    exit_code = EXIT_ERROR
    reason = "failed"

    def __init__(self, *args, reason: str | None = None, not_before: float | None = None,
                 next: list[str] | tuple = ()):
        super().__init__(*args)
        if reason is not None:
            self.reason = reason
        self.not_before = not_before
        self.next = list(next)


class UsageError(RingmgrError):
    """Bad input: unknown node or device, a bad weight, a bad flag combination."""

    reason = "usage"


class ConfigError(RingmgrError):
    """ringmgr.toml is missing, unreadable or does not match the schema."""

    reason = "config"


class BuilderError(RingmgrError):
    """A builder or ring file is missing, truncated or corrupt."""

    reason = "builder_error"


class Refused(RingmgrError):
    """A safety check refused the operation; the message says how to proceed."""

    reason = "refused"


class LockHeld(Refused):
    """Another process holds the builder directory's lock."""

    reason = "locked"


class StepFailed(RingmgrError):
    """A command on a host failed."""

    reason = "failed"


class NotYet(RingmgrError):
    """Nothing could be done yet (e.g. the min_part_hours gate): exit 1, nothing written."""

    exit_code = EXIT_WARNING
    reason = "gate_closed"


class NothingToDo(RingmgrError):
    """The work is already done (every ring.gz current, every node current): exit 0,
    nothing written, the message says so."""

    exit_code = EXIT_OK
    reason = "nothing_to_do"
