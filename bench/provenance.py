"""What every benchmark result records about how it was made: the command, the code, the machine."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def git_commit() -> str:
    """The commit the code ran at, with "+changes" when the working tree differed from it."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return head + ("+changes" if dirty.stdout.strip() else "")


def provenance(cores_shared: bool) -> dict:
    """Call at the start of a run: later edits to the tree are not the code that ran."""
    module = Path(sys.argv[0]).stem
    return {
        "command": " ".join(["python -m bench." + module, *sys.argv[1:]]),
        "git_commit": git_commit(),
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "cores_shared": cores_shared,
        "cpu_native_bf16": cpu_native_bf16(),
    }


def cpu_native_bf16() -> bool:
    """Whether this CPU runs bf16 in hardware: what `--precision auto` trains in."""
    import torch

    from imcaption.engine.precision import native_bf16

    return native_bf16(torch.device("cpu"))
