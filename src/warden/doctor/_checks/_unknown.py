"""A check that cannot be done: a number it needs is set where doctor cannot see (a ConfigMap
or a Secret not among the files given, a field of the pod, an ``ARG`` without a default, an
``EnvironmentFile=``). A warning, never ``ok``: the default warden would use if the value were
unset is not the value."""

from __future__ import annotations

from .._results import Result, Where, warning


def cannot_check(check: str, where: Where, reasons: list[str], needs: str, fix: str) -> Result:
    """``cannot check: WARDEN_STOP_TIMEOUT comes from ConfigMap app (key stop): <needs>``."""
    return warning(check, where, f"cannot check: {'; '.join(reasons)}: {needs}", fix)
