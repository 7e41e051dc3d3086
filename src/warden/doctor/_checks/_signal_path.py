"""``signal-path``: SIGTERM must reach warden (or the program): not through a shell.

A Containerfile's shell form (``ENTRYPOINT warden run ...``) runs ``/bin/sh -c "..."`` as PID
1; ``sh -c`` in a manifest's command or an ``ExecStart=`` does the same. The shell does not
pass SIGTERM on (dash, Debian's ``/bin/sh``, keeps even a lone command as its child; bash
execs a lone one), so the stop waits for the grace period and ends in SIGKILL; a shell-form
ENTRYPOINT also ignores CMD and the manifest's ``args``. ``exec`` replaces the shell.
"""

from __future__ import annotations

import os

from .._commands import Launch, Shell
from .._deployment import Deployment
from .._results import Result, error, ok, warning

ID = "signal-path"
_EXEC_FORM = 'write the exec form: ENTRYPOINT ["warden", "run", ..., "--"], CMD as a JSON array'


def check(d: Deployment) -> list[Result]:
    launch = d.launch
    if launch is None:
        return []
    who = "warden" if launch.warden is not None else "the program"
    shell = launch.shell
    if shell is None:
        return [ok(ID, d.where, f"{who} is started directly (exec form): SIGTERM reaches it")]
    if shell.shell_form:
        return [_shell_form(d, launch, shell, who)]
    return [_sh_c(d, launch, shell, who)]


def _shell_form(d: Deployment, launch: Launch, shell: Shell, who: str) -> Result:
    """The shell is ``/bin/sh -c``, or the one the stage's ``SHELL`` instruction names."""
    if shell.execs:
        return warning(
            ID,
            d.where,
            f"shell form, but its script execs {who}: SIGTERM reaches it; CMD and the "
            "arguments given to the container are ignored",
            _EXEC_FORM,
        )
    if shell.alone and os.path.basename(launch.argv[0]) == "bash":  # noqa: PTH119
        return warning(
            ID,
            d.where,
            f"shell form run by bash -c, which execs a lone command itself: SIGTERM reaches "
            f"{who}, but one more command in {shell.script!r} and it no longer does; CMD and "
            "the arguments given to the container are ignored",
            _EXEC_FORM,
        )
    return error(
        ID,
        d.where,
        f"shell form: {launch.argv[0]} -c {shell.script!r} is PID 1 and does not pass SIGTERM "
        f"to {who}; the stop ends in SIGKILL",
        _EXEC_FORM,
    )


def _sh_c(d: Deployment, launch: Launch, shell: Shell, who: str) -> Result:
    name = os.path.basename(launch.argv[0])  # noqa: PTH119
    if shell.execs:
        return ok(ID, d.where, f"{name} -c execs {who}: the shell is replaced, SIGTERM reaches it")
    fix = f"write exec before {who}'s command: {name} -c '... exec warden run ...'"
    if shell.alone and name == "bash":
        return warning(
            ID,
            d.where,
            f"bash -c without exec: bash execs a lone command itself, but one more command in "
            f"{shell.script!r} and SIGTERM no longer reaches {who}",
            fix,
        )
    return error(
        ID,
        d.where,
        f"{name} -c {shell.script!r} without exec: the shell stays between the runtime and "
        f"{who} and does not pass SIGTERM on; the stop ends in SIGKILL",
        fix,
    )
