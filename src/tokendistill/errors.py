"""User-facing errors: one line that names the problem and the fix, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment, not a bug in tokendistill.

    The CLI prints ``str(error)`` on one line and exits with code 2; ``--debug`` shows the traceback.
    """
