"""The image's HEALTHCHECK: is the service this container serves ready? (`qualityloop serve <service>`)."""

from __future__ import annotations

import importlib
import sys
import urllib.request
from pathlib import Path

from shared.settings import ServiceSettings


def served_service(cmdline: Path = Path("/proc/1/cmdline")) -> str:
    """The service named on the container's command line (process 1, or what an init process runs)."""
    arguments = cmdline.read_bytes().decode().split("\0")
    return arguments[arguments.index("serve") + 1]


def settings_of(service: str) -> ServiceSettings:
    """The service's settings, read as the service reads them (the light settings module, not main)."""
    module = importlib.import_module(f"services.{service}.settings")
    settings_type = next(
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, ServiceSettings) and value.__module__ == module.__name__
    )
    return settings_type()


def main() -> int:
    """Exit 0 when /readyz answers 200 on the served service's port."""
    port = settings_of(served_service()).port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as response:
        return 0 if response.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
