"""A variable of the environment a command runs in, known or not.

Its value is None when it is set where doctor cannot see: a Kubernetes ``valueFrom`` (a
ConfigMap or a Secret not among the inputs, a field of the pod), a Containerfile ``ARG``
without a default (a ``--build-arg``), a unit's ``EnvironmentFile=``. ``origin`` says which,
so a check says "cannot check: WARDEN_STOP_TIMEOUT comes from ConfigMap app (key stop)"
instead of taking the default warden would use if it were unset.
"""

from __future__ import annotations

import dataclasses

from ._results import Where


@dataclasses.dataclass(frozen=True, slots=True)
class EnvVar:
    """A variable: its value (None: not known here), where it is set, and (unknown) where
    its value comes from."""

    value: str | None
    where: Where
    origin: str = ""

    def comes_from(self, name: str) -> str:
        """``WARDEN_STOP_TIMEOUT comes from ConfigMap app (key stop)``."""
        return f"{name} comes from {self.origin or 'somewhere doctor does not see'}"
