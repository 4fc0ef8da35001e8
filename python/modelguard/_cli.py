"""Running the executable: every untrusted byte is read by it, in its jail; this module only
passes paths and reads back its JSON report."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Sequence

from ._binary import find_modelguard_bin
from ._errors import ModelguardError, UnsafeModelError
from ._report import SEVERITIES, Finding

__all__ = ["convert", "run_convert", "run_json", "check_fail_on"]

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2


def check_fail_on(fail_on: str) -> str:
    if fail_on not in (*SEVERITIES, "none"):
        raise ValueError(f"fail_on must be one of {', '.join(SEVERITIES)} or none, not {fail_on!r}")
    return fail_on


def run_json(args: Sequence[str]) -> tuple[int, dict[str, Any] | None, str]:
    """Run ``modelguard ARGS`` (which must print a JSON document on stdout); returns the exit
    code, the parsed document (None if there was none) and stderr."""
    proc = subprocess.run(
        [find_modelguard_bin(), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    except json.JSONDecodeError:
        doc = None
    if doc is not None and not isinstance(doc, dict):
        doc = None
    return proc.returncode, doc, stderr


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    fail_on: str = "high",
    sandbox: str | None = None,
) -> dict[str, Any]:
    """``modelguard convert SRC DST``; see ``run_convert``."""
    return run_convert([os.fspath(src), os.fspath(dst)], Path(src), fail_on=fail_on, sandbox=sandbox)


def run_convert(
    what: Sequence[str], label: Path, *, fail_on: str = "high", sandbox: str | None = None
) -> dict[str, Any]:
    """``modelguard convert WHAT...`` (input and output, or ``--hf-cache ID``); returns the
    report of a successful conversion and raises ``UnsafeModelError`` (refused) or
    ``ModelguardError`` (anything else), naming ``label``."""
    args = ["convert", "-q", *what, "--report", "-", "--fail-on", check_fail_on(fail_on)]
    if sandbox is not None:
        args += ["--sandbox", sandbox]
    code, report, stderr = run_json(args)
    if code == EXIT_OK and report is not None:
        return report
    # A folder's summary already holds every shard's findings.
    findings = [Finding.from_json(f) for f in (report or {}).get("findings") or []]
    if code == EXIT_REFUSED:
        worst = ", ".join(str(f) for f in findings[:3]) or "findings at or above fail_on"
        raise UnsafeModelError(f"{label}: refused: {worst}", findings, report)
    message = (report or {}).get("error") or stderr or f"modelguard exited with {code}"
    raise ModelguardError(f"{label}: {message}", report)
