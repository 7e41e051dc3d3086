"""``warden doctor``: check that a deployment's numbers add up, and explain a past death.

* :func:`check_files` reads Kubernetes manifests, systemd units and Containerfiles together,
  finds warden's options in them with ``warden run``'s own option table, and checks the
  sums a graceful stop depends on (docs/doctor.md has one section per check id).
* :func:`check_live` checks the machine or container it runs in.
* :func:`explain_death` explains an exit status from the kernel's log and the cgroup's
  counters.

Each returns a :class:`Report`; :func:`render_text` and :func:`render_json` print it.

Layering: imports the supervisor (its option table) and the memory readers, never the CLI.
"""

from __future__ import annotations

from ._files import check_files as check_files
from ._inputs import InputError as InputError
from ._live import check_live as check_live
from ._report import render_json as render_json
from ._report import render_text as render_text
from ._results import Report as Report
from ._results import Result as Result
from ._why import explain_death as explain_death

__all__ = [
    "InputError",
    "Report",
    "Result",
    "check_files",
    "check_live",
    "explain_death",
    "render_json",
    "render_text",
]
