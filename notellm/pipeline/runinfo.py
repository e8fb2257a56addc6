"""What every pipeline report records about the machine it ran on."""

from __future__ import annotations

import os


def machine_info() -> str:
    from notellm.machine import cpu_model

    return f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {cpu_model()}"


def loadavg() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())
