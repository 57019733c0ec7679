"""The CPU's energy during a block of code, from RAPL counters (Linux powercap), where readable.

Each CPU package has a counter of microjoules, /sys/class/powercap/intel-rapl:<N>/energy_uj
(AMD's packages too, under the same name since Linux 5.8), that wraps to 0 past
max_energy_range_uj (about 262 kJ: every 15 minutes or so at 300 W). The meter reads it at the
start and end of the block and every `interval_s` in between, so that a wrap is seen however
long the block lasts. Since Linux 5.10 only root may read the counters (they leak what a
process computes, CVE-2020-8694); where they cannot be read the meter says why and measures
nothing: never 0 J. The counters cover the whole package, other processes included: with
train.isolate on, training jobs run one at a time.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")
# psys (the whole platform on some laptops) and dram would count a package's energy twice or
# count other hardware: only the packages are summed.
PACKAGE_PREFIX = "package"


class RaplUnreadable(Exception):
    """Why the CPU's energy cannot be read here, in one line."""


def package_domains(root: Path = POWERCAP) -> list[Path]:
    """The top-level RAPL domains of the CPU packages under `root` (intel-rapl:0, intel-rapl:1...),
    each checked readable; RaplUnreadable says why not."""
    root = Path(root)
    if not root.is_dir():
        raise RaplUnreadable(f"{root} does not exist (no powercap: not Linux, or a VM without RAPL)")
    domains = sorted(path for path in root.glob("intel-rapl:*") if path.name.count(":") == 1)
    packages = [path for path in domains if _text(path / "name").startswith(PACKAGE_PREFIX)]
    if not packages:
        raise RaplUnreadable(f"{root} has no RAPL package domain (intel-rapl:<N> named package-<N>)")
    for path in packages:  # read each once now, so that the reason is given before the block
        read_uj(path)
        _max_range(path)
    return packages


def _text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as error:
        raise RaplUnreadable(_why(path, error)) from None


def _why(path: Path, error: OSError) -> str:
    if isinstance(error, PermissionError):
        return f"{path}: permission denied (root only since Linux 5.10; an admin can grant read access)"
    return f"{path}: {error.strerror or error}"


def read_uj(domain: Path) -> int:
    text = _text(Path(domain) / "energy_uj")
    try:
        return int(text)
    except ValueError:
        raise RaplUnreadable(f"{Path(domain) / 'energy_uj'}: {text!r} is not a number") from None


def _max_range(domain: Path) -> int:
    text = _text(Path(domain) / "max_energy_range_uj")
    try:
        return int(text)
    except ValueError:
        raise RaplUnreadable(f"{Path(domain) / 'max_energy_range_uj'}: {text!r} is not a number") from None


def counted_uj(before: int, after: int, max_range: int) -> int:
    """Microjoules between two readings of a counter that wraps to 0 at max_range (at most once
    between two readings: the meter reads often enough)."""
    return after - before if after >= before else after + max_range - before


class RaplMeter:
    """with RaplMeter() as meter: ...; meter.summary() -> the CPU packages' joules in the block, or
    why there are none. Reads between the start and the end in a daemon thread, every
    `interval_s`, so that a counter's wrap is never missed."""

    def __init__(self, root: Path = POWERCAP, interval_s: float = 60.0):
        self.root, self.interval_s = Path(root), interval_s
        self.domains: list[Path] = []
        self.why_unavailable: str | None = None
        self.seconds: float | None = None
        self._last: dict[Path, int] = {}
        self._ranges: dict[Path, int] = {}
        self._counted_uj = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RaplMeter:
        self._started = time.perf_counter()
        try:
            self.domains = package_domains(self.root)
            self._ranges = {domain: _max_range(domain) for domain in self.domains}
            self._last = {domain: read_uj(domain) for domain in self.domains}
        except RaplUnreadable as error:
            self.domains, self.why_unavailable = [], str(error)
            return self
        self._thread = threading.Thread(target=self._keep_reading, daemon=True, name="rapl-meter")
        self._thread.start()
        return self

    def __exit__(self, *exception) -> None:
        self.seconds = time.perf_counter() - self._started
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.read()

    def _keep_reading(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.read()

    def read(self) -> None:
        """Add what each counter counted since the last reading; a counter that stops being
        readable ends the measurement, with the reason."""
        with self._lock:
            if self.why_unavailable:
                return
            try:
                now = {domain: read_uj(domain) for domain in self.domains}
            except RaplUnreadable as error:
                self.why_unavailable = str(error)
                return
            for domain, value in now.items():
                self._counted_uj += counted_uj(self._last[domain], value, self._ranges[domain])
            self._last = now

    def summary(self) -> dict:
        available = bool(self.domains) and not self.why_unavailable
        return {
            "cpu_energy_j": self._counted_uj / 1e6 if available else None,
            "cpu_energy_domains": " ".join(_text(d / "name") for d in self.domains) if available else None,
            "cpu_energy_seconds": round(self.seconds, 3) if available and self.seconds is not None else None,
            "cpu_energy_unavailable": self.why_unavailable,
        }
