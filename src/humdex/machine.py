"""What names this machine's CPU, for caches of machine code or of numbers that depend on it."""

from __future__ import annotations

import functools
import hashlib
import platform


@functools.cache
def cpu_tag() -> str:
    """A digest of this CPU's model and feature flags (Linux: /proc/cpuinfo's first processor)."""
    lines = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags")):
                    lines.append(line.strip())
                if not line.strip() and lines:
                    break
    except OSError:
        pass
    text = "\n".join(lines) or f"{platform.machine()} {platform.processor()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
