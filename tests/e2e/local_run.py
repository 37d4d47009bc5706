"""Running `qualityloop run` as `make run` does, from a test: start it, wait for its banner, interrupt it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`qualityloop run` in a child process, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "devstack.cli", "run"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def wait_for_banner(process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    """Wait until the platform says it is running; fail with its output if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "QualityLoop is running." in log.read_text():
            return
        if process.poll() is not None:
            raise AssertionError(f"qualityloop run exited early:\n{log.read_text()}")
        time.sleep(0.5)
    raise AssertionError(f"no banner after {timeout} s:\n{log.read_text()}")


def interrupt(process: subprocess.Popen[bytes]) -> int:
    """Ctrl-C, and the exit code once it has stopped everything."""
    process.send_signal(signal.SIGINT)
    return process.wait(60)
