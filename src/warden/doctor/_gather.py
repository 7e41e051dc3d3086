"""From the inputs to the deployments the checks read: each file parsed by its kind, the
manifests' containers joined with the Containerfile that gives their command, the services
with their sockets, and each image on its own."""

from __future__ import annotations

import dataclasses

from ._commands import read_launch
from ._containerfiles import Image, read_containerfile
from ._deployment import Deployment
from ._inputs import Source, dropin_of
from ._kubernetes import container_deployments
from ._manifests import Manifests, read_manifest
from ._results import Where
from ._systemd import service_deployments
from ._units import UnitFile, read_unit
from ._warden import Expansion, read_launched

_EXEC_FORM_LITERAL = (
    "an exec form expands no variable, only a shell does: warden run gets it as written"
)


def gather(sources: list[Source]) -> tuple[list[Deployment], list[tuple[str, str]]]:
    """The deployments in ``sources``, and notes on what could not be checked.

    Raises:
        InputError: a file that cannot be read as its kind.
    """
    notes: list[tuple[str, str]] = []
    manifests = Manifests()
    units: list[UnitFile] = []
    dropins: list[UnitFile] = []
    images: list[Image] = []
    for source in sources:
        if source.kind == "manifest":
            if read_manifest(source.name, source.text, manifests) == 0:
                notes.append((source.name, "no Kubernetes objects in it"))
        elif source.kind == "unit":
            units.append(read_unit(source.name, source.text))
        elif source.kind == "dropin":
            dropins.append(read_unit(source.name, source.text))
        else:
            images.append(read_containerfile(source.name, source.text))
    units = _apply_dropins(units, dropins, notes)
    found, used = container_deployments(manifests, images, notes)
    found += service_deployments(units, notes)
    found += [_image(image, consumed=image.file in used) for image in images]
    for deployment in found:
        if deployment.launch is not None and deployment.warden is None:
            notes.append(
                (
                    deployment.where.file,
                    f"{deployment.where.subject} does not run warden: warden's numbers are "
                    "not checked there",
                )
            )
    return found, notes


def _apply_dropins(
    units: list[UnitFile], dropins: list[UnitFile], notes: list[tuple[str, str]]
) -> list[UnitFile]:
    """Each unit with its drop-ins (``app.service.d/*.conf``, ``service.d/*.conf``); a
    drop-in whose unit was not given is noted, not read as a unit of its own."""
    used: set[str] = set()
    applied = []
    for unit in units:
        own = [d for d in dropins if dropin_of(d.file) in (unit.name, unit.type)]
        used |= {d.file for d in own}
        applied.append(unit.with_dropins(own) if own else unit)
    for dropin in dropins:
        if dropin.file in used:
            continue
        target = dropin_of(dropin.file)
        said = (
            f"a drop-in of {target}, which was not given: give the unit too (its directory, "
            "or both files)"
            if target is not None
            else "a drop-in outside a UNIT.d/ directory: the unit it belongs to is not known"
        )
        notes.append((dropin.file, f"{said}; not checked"))
    return applied


def _image(image: Image, *, consumed: bool) -> Deployment:
    command = image.entrypoint or image.cmd
    line = None if command is None else command.line
    subject = "the image's ENTRYPOINT and CMD"
    where = Where(image.file, line, subject)
    env = {
        k: dataclasses.replace(v, where=dataclasses.replace(v.where, subject=subject))
        for k, v in image.env.items()
    }
    argv = image.argv()
    launch = None
    warden = server = None
    if argv:
        shell_form = command is not None and command.shell_form
        known = {k: v.value for k, v in env.items() if v.value is not None}
        launch = read_launch(argv, shell_form=shell_form, env=known)
        unseen = {k: v.origin for k, v in env.items() if v.value is None}
        expansion = (
            Expansion(unseen, "shell")
            if launch.shell is not None
            else Expansion(unseen, "none", _EXEC_FORM_LITERAL)
        )
        warden, server = read_launched(launch, env, where, expansion)
    return Deployment(
        platform="image",
        where=where,
        launch=launch,
        env=env,
        warden=warden,
        server=server,
        only_signal_path=consumed,
    )
