"""The CPU's energy from RAPL (mnistbench/measures/energy.py), on fake powercap trees in tmp_path: the
counters, their wrap-around, and the reasons given where they cannot be read."""

import os
import time

import pytest

from mnistbench.measures import energy

MAX_RANGE = 262143328850  # max_energy_range_uj of a typical package


def domain(root, name, index, value, max_range=MAX_RANGE):
    folder = root / f"intel-rapl:{index}"
    folder.mkdir(parents=True)
    (folder / "name").write_text(f"{name}\n")
    (folder / "energy_uj").write_text(f"{value}\n")
    (folder / "max_energy_range_uj").write_text(f"{max_range}\n")
    return folder


def set_counter(folder, value):
    """At once, as the kernel's counter changes: the meter's thread never reads a half-written file."""
    temporary = folder / "energy_uj.new"
    temporary.write_text(f"{value}\n")
    temporary.replace(folder / "energy_uj")


def test_sums_the_packages_and_leaves_out_subdomains_and_psys(tmp_path):
    package0 = domain(tmp_path, "package-0", 0, 1_000_000)
    package1 = domain(tmp_path, "package-1", 1, 5_000_000)
    psys = domain(tmp_path, "psys", 2, 0)
    core = tmp_path / "intel-rapl:0:0"  # a subdomain: counted inside its package already
    core.mkdir()
    (core / "name").write_text("core\n")
    with energy.RaplMeter(tmp_path, interval_s=3600) as meter:
        set_counter(package0, 3_500_000)
        set_counter(package1, 6_000_000)
        set_counter(psys, 900_000_000)
    summary = meter.summary()
    assert summary["cpu_energy_j"] == pytest.approx(3.5)
    assert summary["cpu_energy_domains"] == "package-0 package-1"
    assert summary["cpu_energy_unavailable"] is None


def test_the_seconds_are_the_blocks_and_a_still_counter_is_zero_joules(tmp_path):
    """The seconds that the joules were counted over (what energy to a target is scaled by) lie
    between a span timed inside the block and one timed around it, on the same clock: whatever
    the machine's speed. A counter that did not move is 0 J measured, not "unavailable"."""
    domain(tmp_path, "package-0", 0, 7_000_000)
    around_start = time.perf_counter()
    with energy.RaplMeter(tmp_path, interval_s=3600) as meter:
        inside_start = time.perf_counter()
        time.sleep(0.05)  # a span long enough that a unit error (ms for s) is out of the bounds
        inside = time.perf_counter() - inside_start
    around = time.perf_counter() - around_start
    assert inside <= meter.seconds <= around
    summary = meter.summary()
    assert summary["cpu_energy_seconds"] == round(meter.seconds, 3)
    assert summary["cpu_energy_j"] == 0 and summary["cpu_energy_unavailable"] is None


def test_a_counter_that_wraps_between_readings_counts_across_the_wrap(tmp_path):
    package = domain(tmp_path, "package-0", 0, 999_000, max_range=1_000_000)
    with energy.RaplMeter(tmp_path, interval_s=3600) as meter:
        set_counter(package, 1_000)  # wrapped: 1,000 uJ to the top, then 1,000 from 0
        meter.read()
        set_counter(package, 999_999)  # the meter's periodic reads see each wrap
        meter.read()
        set_counter(package, 500)  # and a second wrap
    # 999,000 -> 1,000: 2,000; -> 999,999: 998,999; -> 500: 501
    assert meter.summary()["cpu_energy_j"] == pytest.approx((2_000 + 998_999 + 501) / 1e6)
    assert energy.counted_uj(10, 25, 100) == 15
    assert energy.counted_uj(90, 5, 100) == 15  # 90 -> 100 (= 0), then 0 -> 5


def test_no_powercap_is_said_and_measures_nothing(tmp_path):
    with energy.RaplMeter(tmp_path / "missing") as meter:
        pass
    summary = meter.summary()
    assert summary["cpu_energy_j"] is None  # never 0 J
    assert "does not exist" in summary["cpu_energy_unavailable"]


def test_no_package_domain_is_said(tmp_path):
    domain(tmp_path, "psys", 0, 10)
    with energy.RaplMeter(tmp_path) as meter:
        pass
    assert "no RAPL package domain" in meter.summary()["cpu_energy_unavailable"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_counter_is_named_with_the_reason(tmp_path):
    package = domain(tmp_path, "package-0", 0, 10)
    (package / "energy_uj").chmod(0o200)  # as the kernel leaves it since Linux 5.10: root only
    with energy.RaplMeter(tmp_path) as meter:
        pass
    summary = meter.summary()
    assert summary["cpu_energy_j"] is None
    assert summary["cpu_energy_unavailable"].startswith(str(package / "energy_uj"))
    assert "permission denied" in summary["cpu_energy_unavailable"]


def test_a_counter_that_turns_unreadable_or_garbled_midway_ends_the_measurement(tmp_path):
    package = domain(tmp_path, "package-0", 0, 10)
    with energy.RaplMeter(tmp_path, interval_s=3600) as meter:
        (package / "energy_uj").write_text("n/a\n")
    summary = meter.summary()
    assert summary["cpu_energy_j"] is None
    assert "'n/a' is not a number" in summary["cpu_energy_unavailable"]


def test_the_meter_reads_in_between_on_its_own(tmp_path):
    package = domain(tmp_path, "package-0", 0, 900, max_range=1_000)
    with energy.RaplMeter(tmp_path, interval_s=0.01) as meter:
        set_counter(package, 100)  # wrapped once: 200 uJ
        while meter._counted_uj == 0:  # the thread's next read sees it
            meter._stop.wait(0.01)
        set_counter(package, 150)
    assert meter.summary()["cpu_energy_j"] == pytest.approx(250 / 1e6)


def test_an_unreadable_counter_file_is_named_with_the_error_for_root_too(tmp_path):
    package = domain(tmp_path, "package-0", 0, 10)
    (package / "energy_uj").unlink()
    (package / "energy_uj").mkdir()  # unreadable whoever reads it
    with energy.RaplMeter(tmp_path) as meter:
        pass
    summary = meter.summary()
    assert summary["cpu_energy_j"] is None
    assert summary["cpu_energy_unavailable"] == f"{package / 'energy_uj'}: Is a directory"
