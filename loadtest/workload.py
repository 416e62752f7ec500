"""What each load-test job looks like: its arguments, tenant and handler time.

Pure: no Redis, no Kafka. A job's args are ``{"t": intended_send_ns, "pad": "..."}``
(plus ``"ms"``, the handler time drawn for it, when the handler sleeps), so a
worker can measure latency from the intended send time, not from when the
producer managed to send it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from jobpipe.errors import ConfigError

ARGS_OVERHEAD_BYTES = 30  # {"t":1700000000000000000,"pad":""}


@dataclass(frozen=True, slots=True)
class HandlerTime:
    """How long the no-op handler takes: constant or exponential.

    Attributes:
        kind: ``const`` or ``exp``.
        mean_ms: the constant, or the exponential's mean.
    """

    kind: str
    mean_ms: float

    @classmethod
    def parse(cls, text: str) -> HandlerTime:
        """``0``, ``5`` (constant ms) or ``exp:5`` (exponential, mean 5 ms).

        Raises:
            ConfigError: anything else.
        """
        kind, _, value = text.rpartition(":")
        kind = kind or "const"
        try:
            mean_ms = float(value)
        except ValueError:
            raise ConfigError(f"--handler-ms: {text!r} is not N or exp:N (ms)") from None
        if kind not in ("const", "exp") or mean_ms < 0:
            raise ConfigError(f"--handler-ms: {text!r} is not N or exp:N with N >= 0")
        return cls(kind, mean_ms)

    def draw_ms(self, rng: random.Random) -> float:
        """One handler time in milliseconds."""
        if self.kind == "exp" and self.mean_ms > 0:
            return rng.expovariate(1.0 / self.mean_ms)
        return self.mean_ms

    def __str__(self) -> str:
        return f"{self.mean_ms:g}" if self.kind == "const" else f"exp:{self.mean_ms:g}"


@dataclass(frozen=True, slots=True)
class TenantMix:
    """Which tenant each job belongs to: ``count`` tenants, Zipf-skewed.

    Attributes:
        count: tenants (0 = jobs carry no tenant).
        skew: Zipf exponent; 0 is uniform, 1 makes tenant 0 about ``H(count)``
            times the average.
    """

    count: int = 0
    skew: float = 0.0

    def __post_init__(self) -> None:
        if self.count < 0 or self.skew < 0:
            raise ConfigError("--tenants and --tenant-skew must be >= 0")

    def weights(self) -> list[float]:
        """Relative share of each tenant, tenant 0 first."""
        return [1.0 / (k + 1) ** self.skew for k in range(self.count)]

    def names(self) -> list[str]:
        """Tenant names, ``t000``, ``t001`` ..."""
        return [f"t{k:03d}" for k in range(self.count)]

    def chooser(self, seed: int) -> TenantChooser:
        """A seeded picker of tenants following the weights."""
        return TenantChooser(self, seed)


class TenantChooser:
    """Draws tenants from a :class:`TenantMix` (deterministic for a seed)."""

    def __init__(self, mix: TenantMix, seed: int) -> None:
        self._names = mix.names()
        self._weights = mix.weights()
        self._rng = random.Random(seed)

    def pick(self, n: int) -> list[str | None]:
        """Tenants of the next ``n`` jobs (``None`` each when there are no tenants)."""
        if not self._names:
            return [None] * n
        return self._rng.choices(self._names, weights=self._weights, k=n)


def job_args(intended_ns: int, pad: str, handler_ms: float | None) -> dict[str, object]:
    """The arguments of one load-test job."""
    args: dict[str, object] = {"t": intended_ns, "pad": pad}
    if handler_ms:
        args["ms"] = round(handler_ms, 3)
    return args


def padding(payload_bytes: int) -> str:
    """Filler so a job's args are about ``payload_bytes`` long."""
    if payload_bytes < 0:
        raise ConfigError("--payload-bytes must be >= 0")
    return "x" * max(0, payload_bytes - ARGS_OVERHEAD_BYTES)
