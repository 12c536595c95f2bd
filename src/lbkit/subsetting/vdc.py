"""The binary Van der Corput sequence: low-discrepancy positions on a ring.

The ``i``-th element is the *binary radical inverse* of ``i``: write ``i`` in binary and mirror
its digits about the binary point, so ``6 = 110₂`` becomes ``0.011₂ = 0.375``. The first ``n``
elements spread over ``[0, 1)`` about as evenly as any ``n`` points can, and each new element
falls into the largest gap left by the previous ones. Ringsteady subsetting places backends and
frontends at these positions (Ward, Wankadia and Guliani, "Reinventing Backend Subsetting at
Google", ACM Queue 20(5), 2022).

With ``bits = ceil(log2(n))``, index ``i < n`` sits at ``bit_reverse(i, bits) / 2**bits``, and
bit reversal is a bijection, so the first ``n`` positions are **distinct**: :func:`vdc_order`
needs no tie rule. Walking a bit-reversed counter lists them in order in O(n), without a
comparison sort (P. Ward, "Ringsteady Sorting in Linear Time", blog.flowblok.id.au, 2023).

>>> [van_der_corput(i) for i in range(5)]
[0.0, 0.5, 0.25, 0.75, 0.125]
>>> vdc_order(5).tolist()
[0, 4, 2, 1, 3]
"""

from __future__ import annotations

from array import array

from lbkit import _kernels
from lbkit.errors import ArgumentTypeError, InvalidArgument

__all__ = ["MAX_BITS", "MAX_ORDER", "MAX_VDC_INDEX", "bit_reverse", "van_der_corput", "vdc_order"]

#: The widest :func:`bit_reverse` (unsigned 64-bit integers).
MAX_BITS = 64
#: The largest ``n`` for :func:`vdc_order` (a 1 GiB array); larger ones are refused as a
#: likely mistake.
MAX_ORDER = 2**28
#: The largest index for :func:`van_der_corput`: every position up to it is exact in a double.
MAX_VDC_INDEX = 2**53 - 1


def van_der_corput(i: int) -> float:
    """The ``i``-th element of the binary Van der Corput sequence, in ``[0, 1)``.

    The binary digits of ``i`` mirrored about the binary point; exact for every ``i`` up to
    :data:`MAX_VDC_INDEX`.

    Raises:
        ArgumentTypeError: ``i`` is not an ``int``.
        InvalidArgument: ``i`` is outside ``0..MAX_VDC_INDEX``.

    Runtime complexity: O(log i).

    >>> van_der_corput(0), van_der_corput(1), van_der_corput(6)
    (0.0, 0.5, 0.375)
    """
    _check_int(i, "i", MAX_VDC_INDEX)
    bits = i.bit_length()
    # At most 53 significant bits over a power of two: the division is exact.
    return _kernels.subsetting.bit_reverse(i, bits) / (1 << bits)


def bit_reverse(i: int, bits: int) -> int:
    """The lowest ``bits`` bits of ``i``, in reverse order.

    ``bit_reverse(i, bits) / 2**bits`` is :func:`van_der_corput` of ``i`` for every
    ``i < 2**bits``.

    Raises:
        ArgumentTypeError: an argument is not an ``int``.
        InvalidArgument: ``bits`` is outside ``0..64``, or ``i`` outside ``0..2**bits - 1``.

    Runtime complexity: O(bits).

    >>> bit_reverse(0b0011, 4), bit_reverse(1, 32)
    (12, 2147483648)
    """
    _check_int(bits, "bits", MAX_BITS)
    if isinstance(i, bool) or not isinstance(i, int):
        raise ArgumentTypeError(f"i is {type(i).__name__}; it must be an int")
    if not 0 <= i < 1 << bits:
        raise InvalidArgument(f"i is {i}; it must be in 0..{(1 << bits) - 1} for bits={bits}")
    result: int = _kernels.subsetting.bit_reverse(i, bits)
    return result


def vdc_order(n: int) -> array[int]:
    """The indices ``0 .. n - 1`` sorted by their Van der Corput positions, as an ``array('I')``.

    The positions of ``0 .. n - 1`` are distinct, so the order has no ties. It is the order in
    which Ringsteady lays backends with stable indices ``0 .. n - 1`` around its ring.

    Raises:
        ArgumentTypeError: ``n`` is not an ``int``.
        InvalidArgument: ``n`` is outside ``0..MAX_ORDER``.

    Runtime complexity: O(n): a bit-reversed counter runs through ``2**ceil(log2(n)) < 2n``
    values, each step amortised O(1); no comparison sort.

    >>> vdc_order(8).tolist()
    [0, 4, 2, 6, 1, 5, 3, 7]
    >>> vdc_order(6).tolist()
    [0, 4, 2, 1, 5, 3]
    """
    _check_int(n, "n", MAX_ORDER)
    order: array[int] = _kernels.subsetting.vdc_order(n)
    return order


def _check_int(value: object, name: str, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")
    if not 0 <= value <= maximum:
        raise InvalidArgument(f"{name} is {value}; it must be in 0..{maximum}")
