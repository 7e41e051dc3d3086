"""The checks, one module each, run in this order; each takes a deployment and returns its
results (``ok`` with the arithmetic, or a finding with the fix). Their ids are stable: they
are what a CI job filters on, and docs/doctor.md has a section for each."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .._deployment import Deployment
from .._results import Result
from . import (
    _configmap_subpath,
    _gate_blind,
    _grace_budget,
    _keepalive_lb,
    _kill_mode,
    _liveness_start,
    _memory_limit,
    _probes_identical,
    _readiness_drain,
    _server_timeout,
    _signal_path,
    _stop_budget,
    _warden_options,
)

Check = Callable[[Deployment], list[Result]]

#: id -> check, in the order they run (and are shown).
CHECKS: dict[str, Check] = {
    module.ID: module.check
    for module in (
        _warden_options,
        _signal_path,
        _grace_budget,
        _stop_budget,
        _kill_mode,
        _server_timeout,
        _probes_identical,
        _liveness_start,
        _readiness_drain,
        _keepalive_lb,
        _memory_limit,
        _configmap_subpath,
        _gate_blind,
    )
}


def run_checks(deployments: Iterable[Deployment]) -> list[Result]:
    """Every check on every deployment (an image a manifest runs: signal-path only)."""
    results: list[Result] = []
    for deployment in deployments:
        for check_id, check in CHECKS.items():
            if deployment.only_signal_path and check_id != _signal_path.ID:
                continue
            results += check(deployment)
    return results
