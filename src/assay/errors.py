"""Errors a user can cause. The CLI prints the message as one sentence and exits with 2."""


class UserError(Exception):
    """Bad input or a missing prerequisite; the message names the cause and the fix."""

    exit_code = 2
