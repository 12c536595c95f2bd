"""A time-aware exponentially weighted moving average.

Samples arrive at irregular times (a health probe every 60 s, a request whenever it finishes),
so the weight of the old estimate depends on the time since the last sample:
``w = exp(-dt / tau)``, ``estimate = w * estimate + (1 - w) * sample``. After ``tau`` seconds
without a sample the old estimate keeps ``1/e`` of its weight, whatever the sample rate. This is
the average Cloudflare's dynamic steering applies to health-monitor RTTs and the one behind
Finagle's peak EWMA. With ``peak=True`` a sample above the estimate replaces it at once, so a
slowdown shows immediately and a recovery decays in. As in Finagle, a sample taken at the same
instant as the previous one has weight ``1 - exp(0) = 0``: only elapsed time moves the average.

>>> average = Ewma(tau=10.0)
>>> average.update(0.100, now=0.0)
0.1
>>> round(average.update(0.200, now=10.0), 4)  # w = 1/e
0.1632
"""

from __future__ import annotations

import math

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument

__all__ = ["Ewma"]


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    return float(value)


class Ewma:
    """A time-aware EWMA of non-negative samples (latencies, RTTs, error rates).

    Args:
        tau: the decay time in seconds, finite and > 0.
        peak: a sample above the estimate replaces it at once (peak EWMA).

    Raises:
        ConfigError: ``tau`` is not finite and > 0.

    Runtime complexity: O(1) per update.

    >>> Ewma(tau=5.0, peak=True).update(0.3, now=0.0)
    0.3
    """

    __slots__ = ("_at", "_peak", "_tau", "_value")

    def __init__(self, *, tau: float, peak: bool = False) -> None:
        tau = _number(tau, "tau")
        if not math.isfinite(tau) or tau <= 0.0:
            raise ConfigError(f"tau is {tau!r}; it must be finite and > 0 seconds")
        if not isinstance(peak, bool):
            raise ArgumentTypeError(f"peak is {type(peak).__name__}; it must be a bool")
        self._tau = tau
        self._peak = peak
        self._value: float | None = None
        self._at = -math.inf

    @property
    def value(self) -> float | None:
        """The estimate, or ``None`` before the first sample."""
        return self._value

    @property
    def updated_at(self) -> float:
        """The time of the latest sample (``-inf`` before the first)."""
        return self._at

    def update(self, sample: float, *, now: float) -> float:
        """Fold in one sample taken at ``now`` and return the new estimate.

        Raises:
            InvalidArgument: ``sample`` is negative or not finite, ``now`` is not finite or
                earlier than the previous sample's time.

        Runtime complexity: O(1).

        >>> average = Ewma(tau=1.0)
        >>> average.update(2.0, now=0.0), average.update(4.0, now=0.0)
        (2.0, 2.0)
        """
        sample = _number(sample, "sample")
        now = _number(now, "now")
        if not math.isfinite(sample) or sample < 0.0:
            raise InvalidArgument(f"sample is {sample!r}; samples must be finite and >= 0")
        if not math.isfinite(now):
            raise InvalidArgument(f"now is {now!r}; times must be finite")
        if now < self._at:
            raise InvalidArgument(
                f"now is {now!r}, before the previous sample at {self._at!r}; "
                "time must not go backwards"
            )
        if self._value is None or (self._peak and sample > self._value):
            self._value = sample
        else:
            weight = math.exp(-(now - self._at) / self._tau)
            self._value = weight * self._value + (1.0 - weight) * sample
        self._at = now
        return self._value
