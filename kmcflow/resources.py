"""Memory guards: refuse work that would not fit before allocating it.

A lattice of ``--cells 800 800 800`` passed every size check and then allocated gigabytes
before failing (or before the kernel killed the process). :func:`check_memory` compares an
estimate with the memory this machine has available and refuses, with one line, beyond it.
``KMCFLOW_MAX_MEMORY_GB`` overrides the limit (for a machine whose free memory the estimate
misjudges, or to refuse earlier on a shared node).
"""

from __future__ import annotations

import os

from kmcflow.errors import ConfigError

MEMORY_ENV = "KMCFLOW_MAX_MEMORY_GB"


def available_memory_bytes() -> int | None:
    """Memory available for new allocations (``MemAvailable``), else the physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def memory_limit_bytes() -> int | None:
    """The limit: ``KMCFLOW_MAX_MEMORY_GB`` if set, else 90 % of the available memory."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value > 0:
            raise ConfigError(f"{MEMORY_ENV}={text!r} is not a positive number of GB",
                              field=MEMORY_ENV, hint="e.g. KMCFLOW_MAX_MEMORY_GB=16")
        return int(value * 1e9)
    available = available_memory_bytes()
    return None if available is None else int(0.9 * available)


def check_memory(n_bytes: float, what: str, field: str, hint: str) -> None:
    """Refuse (one line) if ``n_bytes`` exceed :func:`memory_limit_bytes`."""
    limit = memory_limit_bytes()
    if limit is not None and n_bytes > limit:
        raise ConfigError(f"{what} need about {n_bytes / 1e9:.3g} GB, more than the "
                          f"{limit / 1e9:.3g} GB this machine has available", field=field,
                          hint=f"{hint}, or set {MEMORY_ENV} to allow more")
