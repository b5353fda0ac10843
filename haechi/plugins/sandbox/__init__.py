# SPDX-License-Identifier: Apache-2.0
"""The plugin sandbox: a confined child process that runs one verified plugin.

``host`` starts and drives the child; ``_child``, ``_confine`` and ``_wire`` are the modules
the child itself runs (sent to it as source, standard library only); ``breaker`` bounds
respawns. See ``docs/plugins-sandbox.md`` for the threat model.
"""

from __future__ import annotations

from haechi.plugins.sandbox.breaker import BreakerPolicy, RespawnBreaker
from haechi.plugins.sandbox.host import (
    ConfinementReport,
    SandboxLimits,
    SandboxProcess,
    SandboxReply,
    probe_confinement,
)

__all__ = [
    "BreakerPolicy",
    "ConfinementReport",
    "RespawnBreaker",
    "SandboxLimits",
    "SandboxProcess",
    "SandboxReply",
    "probe_confinement",
]
