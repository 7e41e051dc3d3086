"""Programs that drop privileges say READY=1 through warden, judged from ``guest/privdrop.py``."""

from __future__ import annotations

import pytest

from .conftest import Guest

CHECK = "privdrop"
APP = 10001  # the user the guest's runner makes (the Containerfile's USER)
pytestmark = [pytest.mark.system, pytest.mark.timeout(1800)]


def test_user_in_the_unit(guest: Guest) -> None:
    seen = guest.saw(CHECK, "user")
    assert (seen["systemctl_rc"], seen["ActiveState"]) == (0, "active"), seen["journal"]
    assert (seen["warden_uid"], seen["program_uid"]) == (APP, APP)


def test_setpriv_in_the_command(guest: Guest) -> None:
    seen = guest.saw(CHECK, "setpriv")
    assert (seen["systemctl_rc"], seen["ActiveState"]) == (0, "active"), seen["journal"]
    assert (seen["warden_uid"], seen["program_uid"]) == (0, APP)
