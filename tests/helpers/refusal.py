"""The bad-input rule, as one assertion: a refused command ends with exactly one
``ringmgr: error: ...`` line (its last line), no traceback.  The other half of the rule,
nothing changed, is the caller's: checksums before and after
(``tests.helpers.ringfactory.checksums``)."""

from __future__ import annotations


def one_line_error(output: str, *needles: str) -> str:
    """The error line of ``output`` (stderr, or CliRunner's combined output); each of
    ``needles`` must be in it."""
    assert "Traceback" not in output, output
    errors = [ln for ln in output.splitlines() if ln.startswith("ringmgr: error:")]
    assert len(errors) == 1, output
    assert output.rstrip("\n").splitlines()[-1] == errors[0], output
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]
