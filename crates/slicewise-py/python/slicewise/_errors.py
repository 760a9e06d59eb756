"""The one exception type of slicewise."""

from __future__ import annotations


class Error(Exception):
    """A slicewise failure: what went wrong, and which kind of failure it is.

    Attributes:
        status: the kind, as the C ABI names it after ``SLICEWISE_``: ``"IO"``, ``"FORMAT"``,
            ``"UNSUPPORTED"``, ``"TOO_LARGE"``, ``"INVALID_ARGUMENT"``, ``"MODEL"``,
            ``"RUNTIME"``, ``"PROVIDER"``, ``"INFERENCE"``, ``"CANCELLED"``, ``"PANIC"``.
        code: the kind's stable status code (``slicewise_status`` in ``slicewise.h``).
        message: the engine's message, naming the file where there is one.
    """

    def __init__(self, message: str, status: str = "PANIC", code: int = 11) -> None:
        super().__init__(message, status, code)
        self.message = message
        self.status = status
        self.code = code

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"

    def __reduce__(self):
        # Pickles with its attributes (Ray moves exceptions between processes).
        return (type(self), (self.message, self.status, self.code))


def invalid(message: str) -> Error:
    """An ``INVALID_ARGUMENT`` error for a problem found before the engine is called."""
    return Error(message, status="INVALID_ARGUMENT", code=1)
