"""The one error type of the studio commands: its message is the single line the CLI prints."""


class StudioError(RuntimeError):
    """A problem the user can fix (bad token, server down, config mismatch, bad export).

    `str(error)` is one line, printed as `error: ...` with exit code 1, no traceback."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
