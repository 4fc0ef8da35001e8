"""The two exceptions the API raises."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._report import Finding

__all__ = ["ModelguardError", "UnsafeModelError"]


class ModelguardError(Exception):
    """modelguard could not read or convert the model (malformed file, unsupported content,
    a limit, a sandbox failure), or the result cannot be represented as asked.

    ``report`` is the tool's JSON report when there is one.
    """

    def __init__(self, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.report = report


class UnsafeModelError(ModelguardError):
    """The model was refused: loading it with pickle would run code (or reach a finding at or
    above ``fail_on``). Nothing was loaded. ``findings`` says what was found and where."""

    def __init__(
        self,
        message: str,
        findings: list[Finding],
        report: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, report)
        self.findings = findings
