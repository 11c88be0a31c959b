"""The one exception the commands raise for problems a user can fix; the CLI turns it into a message."""


class HarnessError(Exception):
    """A one-paragraph explanation that names the file and the problem; exit code 2 unless told."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
