"""The numbers a deployment is made of, each with where it came from; and the units of each
file format (Kubernetes quantities, systemd time spans and sizes).

Each format reads its units its own way, and the difference is itself a mistake doctor
names: Kubernetes reads ``512M`` as 512 x 10^6 bytes and ``512Mi`` as 512 x 2^20, while warden
and systemd read ``512M`` as 512 x 2^20.
"""

from __future__ import annotations

import dataclasses
import math
import re

from .._exceptions import WardenError
from ._results import Where


class NumberError(WardenError, ValueError):
    """A value that is not a number in its format; the message names the value."""


@dataclasses.dataclass(frozen=True, slots=True)
class Number:
    """A number of a deployment: seconds or bytes, and where it was said.

    Attributes:
        value: seconds (a duration) or bytes (a size); ``math.inf`` for "forever".
        label: how a person finds it: ``terminationGracePeriodSeconds``, ``--stop-timeout``,
            ``WARDEN_STOP_TIMEOUT``.
        where: the file and line (the line is None for a default).
        default: the value is the default, not written anywhere.
    """

    value: float
    label: str
    where: Where
    default: bool = False

    def said(self, unit: str = "s") -> str:
        """``terminationGracePeriodSeconds 30 s (the default)``."""
        text = f"{self.label} {amount(self.value, unit)}"
        return f"{text} (the default)" if self.default else text


def amount(value: float, unit: str = "s") -> str:
    """``30 s``, ``1.5 s``, ``forever``; ``512 MiB`` for bytes (unit ``B``)."""
    if math.isinf(value):
        return "forever" if unit == "s" else "no limit"
    if unit == "B":
        mib = value / 2**20
        if mib >= 1024 and (mib / 1024).is_integer():
            return f"{mib / 1024:g} GiB"
        return f"{mib:.0f} MiB" if mib >= 10 or mib.is_integer() else f"{mib:.1f} MiB"
    return f"{value:g} {unit}"


# -- Kubernetes -------------------------------------------------------------------------------

_QUANTITY = re.compile(r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(?:([eE][+-]?[0-9]+)|([a-zA-Z]*))")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}


def kubernetes_quantity(value: object) -> float:
    """Bytes of a Kubernetes quantity: ``512Mi``, ``1G`` (10^9), ``129e6``, ``0.5Gi``."""
    text = str(value).strip()
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise NumberError(f"{text!r} is not a Kubernetes quantity (e.g. 512Mi)")
    number, exponent, suffix = match.groups()
    if exponent:
        return float(number + exponent)
    scale = _BINARY.get(suffix) or _DECIMAL.get(suffix)
    if scale is None:
        raise NumberError(f"{text!r} has an unknown suffix {suffix!r} (use Ki, Mi, Gi, k, M, G)")
    return float(number) * scale


def kubernetes_seconds(value: object) -> float:
    """An integer field of seconds (``terminationGracePeriodSeconds: 30``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise NumberError(f"{value!r} is not a number of seconds")
    try:
        seconds = float(value)
    except ValueError:
        raise NumberError(f"{value!r} is not a number of seconds") from None
    if math.isnan(seconds) or seconds < 0:
        raise NumberError(f"{value!r} is not a number of seconds")
    return seconds


# -- systemd -----------------------------------------------------------------------------------

_SPAN_UNITS = {
    "usec": 1e-6,
    "us": 1e-6,
    "µs": 1e-6,
    "msec": 1e-3,
    "ms": 1e-3,
    "seconds": 1.0,
    "second": 1.0,
    "sec": 1.0,
    "s": 1.0,
    "": 1.0,
    "minutes": 60.0,
    "minute": 60.0,
    "min": 60.0,
    "m": 60.0,
    "hours": 3600.0,
    "hour": 3600.0,
    "hr": 3600.0,
    "h": 3600.0,
    "days": 86400.0,
    "day": 86400.0,
    "d": 86400.0,
    "weeks": 604800.0,
    "week": 604800.0,
    "w": 604800.0,
}
_SPAN_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zµ]*)\s*")


def systemd_timespan(value: str) -> float:
    """Seconds of a systemd time span: ``90``, ``30s``, ``1min 30s``, ``5min``, ``infinity``."""
    text = value.strip()
    if text == "infinity":
        return math.inf
    total, position, parts = 0.0, 0, 0
    while position < len(text):
        match = _SPAN_PART.match(text, position)
        if match is None or match.end() == position or match.group(2) not in _SPAN_UNITS:
            raise NumberError(f"{value!r} is not a systemd time span (e.g. 90s, 1min 30s)")
        total += float(match.group(1)) * _SPAN_UNITS[match.group(2)]
        position, parts = match.end(), parts + 1
    if not parts:
        raise NumberError(f"{value!r} is not a systemd time span (e.g. 90s, 1min 30s)")
    return total


_SIZE = re.compile(r"([0-9]+(?:\.[0-9]*)?)\s*([KMGTPE]?)", re.IGNORECASE)


def systemd_size(value: str) -> float:
    """Bytes of a systemd size (``MemoryMax=512M``: powers of 1024); ``infinity``: no limit.

    A percentage (of the machine's memory) cannot be known here: NumberError.
    """
    text = value.strip()
    if text == "infinity":
        return math.inf
    match = _SIZE.fullmatch(text)
    if match is None:
        raise NumberError(f"{value!r} is a size doctor cannot compare (e.g. 512M)")
    power = " KMGTPE".index(match.group(2).upper() or " ")
    return float(match.group(1)) * float(1024**power)
