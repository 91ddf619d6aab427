"""The three ways a run ends other than success, each with its exit code. Anything else is a bug (exit 1,
traceback shown). The CLI reads `exit_code`."""


class UserError(Exception):
    """Bad input or config: the CLI prints the one-line message and exits 2.

    The message names the file or field, what was expected, and the fix.
    """

    exit_code = 2


class TrainingFailed(Exception):
    """Training could not go on (e.g. a non-finite loss, a checkpoint that cannot be saved): exit 3, the last
    good checkpoint kept."""

    exit_code = 3


class Interrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM: the state was saved at a step boundary; exit 130, resumable. A KeyboardInterrupt, so
    that `except KeyboardInterrupt` around a call to trainwell catches the first Ctrl-C as well as a second."""

    exit_code = 130
