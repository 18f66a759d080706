"""The exceptions and warnings that servicecircle's users see.

Every class is also a built-in exception (``InputError`` is a ``ValueError``), so
``except ValueError`` keeps working. The CLI turns a :class:`ServiceCircleError` into one
line on stderr and exit code 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "CRSError",
    "ExportError",
    "InputError",
    "NetworkError",
    "ServiceCircleError",
    "ServiceCircleWarning",
    "SnapError",
]


class ServiceCircleError(Exception):
    """A problem the user can fix; the message says what, where and how."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        if self.problems:
            shown = self.problems[:20]
            more = len(self.problems) - len(shown)
            lines = [message, *(f"  - {p}" for p in shown)]
            if more:
                lines.append(f"  ... and {more} more")
            message = "\n".join(lines)
        super().__init__(message)


class InputError(ServiceCircleError, ValueError):
    """An input file or table is missing, unreadable or holds invalid values."""


class CRSError(InputError):
    """A coordinate system is unknown, undeclared or does not match the data."""


class NetworkError(ServiceCircleError, RuntimeError):
    """The walking network could not be loaded, downloaded or built."""


class SnapError(ServiceCircleError, ValueError):
    """Points lie too far from the walking network to be attached to it."""


class ExportError(ServiceCircleError, OSError):
    """An output could not be written where it was asked to go."""


class ServiceCircleWarning(UserWarning):
    """Something is off in the data but the run can go on (repaired polygons, far stations)."""
