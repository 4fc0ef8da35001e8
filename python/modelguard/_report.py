"""Typed views of modelguard's JSON reports (``convert --report`` and ``scan --format json``).
The raw dictionaries stay available as ``.raw``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Finding", "FileResult", "Report"]

SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Finding:
    """One finding: ``rule_id`` (``MG001``...), ``severity`` (info ... critical), a message,
    the Python global involved if any, and where in the file it was seen."""

    rule_id: str
    severity: str
    message: str
    rule_name: str | None = None
    global_name: str | None = None
    location: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Finding:
        # `convert --report` says "rule", `scan --format json` says "rule_id" + "rule_name".
        return cls(
            rule_id=str(d.get("rule_id") or d.get("rule") or ""),
            severity=str(d.get("severity", "")),
            message=str(d.get("message", "")),
            rule_name=d.get("rule_name"),
            global_name=d.get("global"),
            location=dict(d.get("location") or {}),
        )

    def __str__(self) -> str:
        return f"[{self.severity}] {self.rule_id}: {self.message}"


@dataclass(frozen=True)
class FileResult:
    """The scan result of one file."""

    path: str
    verdict: str
    format: str | None
    sha256: str | None
    findings: list[Finding]
    error: str | None
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FileResult:
        return cls(
            path=str(d.get("path", "")),
            verdict=str(d.get("verdict", "")),
            format=d.get("format"),
            sha256=d.get("sha256"),
            findings=[Finding.from_json(f) for f in d.get("findings") or []],
            error=d.get("error"),
            raw=d,
        )


@dataclass(frozen=True)
class Report:
    """What ``modelguard scan`` found. ``exit_code`` is the CLI's: 0 nothing at or above
    ``fail_on``, 1 findings at or above it, 2 a file could not be scanned."""

    files: list[FileResult]
    exit_code: int
    fail_on: str | None
    raw: dict[str, Any]

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.files for f in r.findings]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Report:
        return cls(
            files=[FileResult.from_json(f) for f in d.get("files") or []],
            exit_code=int(d.get("exit_code", 2)),
            fail_on=d.get("fail_on"),
            raw=d,
        )
