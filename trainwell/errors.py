"""The two errors a user can act on. Everything else is a bug (exit 1, traceback shown)."""


class UserError(Exception):
    """Bad input or config: the CLI prints the one-line message and exits 2.

    The message names the file or field, what was expected, and the fix.
    """

    exit_code = 2


class TrainingFailed(Exception):
    """Training could not go on (e.g. a non-finite loss): exit 3, last good checkpoint kept."""

    exit_code = 3


class Interrupted(Exception):
    """SIGINT/SIGTERM: the state was saved at a step boundary; exit 130, resumable."""

    exit_code = 130
