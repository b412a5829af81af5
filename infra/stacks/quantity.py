"""Kubernetes resource quantities (``500m``, ``2``, ``512Mi``, ``10Gi``): parse and compare.

The same quantities size both targets: Kubernetes takes them as they are, Docker gets
them converted (CPU cores, memory in MiB).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_CPU = re.compile(r"^(?P<number>\d+(\.\d+)?)(?P<unit>m?)$")
_MEMORY = re.compile(r"^(?P<number>\d+(\.\d+)?)(?P<unit>Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_MEMORY_FACTORS: dict[str, int] = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
MIB = 2**20


class QuantityError(ValueError):
    """Not a quantity this program understands."""


def _negative(quantity: str) -> None:
    if str(quantity).strip().startswith("-"):
        raise QuantityError(f"{quantity!r} must be greater than zero")


def cpu_cores(quantity: str) -> Decimal:
    """``"500m"`` → 0.5, ``"2"`` → 2. Raises :class:`QuantityError` unless > 0."""
    _negative(quantity)
    match = _CPU.match(str(quantity).strip())
    if not match:
        raise QuantityError(
            f"{quantity!r} is not a CPU quantity "
            f"(use cores like '2' or '0.5', or millicores '500m')"
        )
    try:
        cores = Decimal(match["number"])
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise QuantityError(f"{quantity!r} is not a number") from exc
    if match["unit"] == "m":
        cores /= 1000
    if cores <= 0:
        raise QuantityError(f"{quantity!r} must be greater than zero")
    return cores


def memory_bytes(quantity: str) -> int:
    """``"512Mi"`` → 536870912. Raises :class:`QuantityError` unless > 0."""
    _negative(quantity)
    match = _MEMORY.match(str(quantity).strip())
    if not match:
        raise QuantityError(
            f"{quantity!r} is not a size (use a number with Ki, Mi, Gi, Ti or k, M, G, T, "
            f"e.g. '512Mi' or '10Gi')"
        )
    size = int(Decimal(match["number"]) * _MEMORY_FACTORS[match["unit"] or ""])
    if size <= 0:
        raise QuantityError(f"{quantity!r} must be greater than zero")
    return size


def memory_mib(quantity: str) -> int:
    """A size in whole MiB, at least 1 (Docker's ``memory`` and ``memory_reservation``)."""
    return max(1, memory_bytes(quantity) // MIB)
