"""The image's HEALTHCHECK: is the service this container serves ready? (`qualityloop serve <service>`)."""

from __future__ import annotations

import importlib
import sys
import urllib.request
from pathlib import Path


def served_service() -> str:
    """The service named on the container's command line (process 1)."""
    arguments = Path("/proc/1/cmdline").read_bytes().decode().split("\0")
    return arguments[arguments.index("serve") + 1]


def main() -> int:
    """Exit 0 when /readyz answers 200 on the service's own port (its settings, as the service reads them)."""
    service = served_service()
    settings = importlib.import_module(f"services.{service}.main").DEFINITION.settings_type()
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.port}/readyz", timeout=3) as response:
        return 0 if response.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
