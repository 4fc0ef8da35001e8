"""``python -m modelguard ARGS``: run the bundled executable."""

from __future__ import annotations

import os
import subprocess
import sys

from ._binary import find_modelguard_bin


def main() -> None:
    exe = find_modelguard_bin()
    if sys.platform == "win32":  # no exec on Windows
        sys.exit(subprocess.run([exe, *sys.argv[1:]]).returncode)
    os.execv(exe, [exe, *sys.argv[1:]])


if __name__ == "__main__":
    main()
