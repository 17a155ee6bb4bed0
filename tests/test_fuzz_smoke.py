"""A short fuzz smoke in CI: every fuzz target survives a few hundred random inputs."""

import fuzz_targets
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize("name", sorted(fuzz_targets.TARGETS))
def test_fuzz_smoke(name):
    target = fuzz_targets.TARGETS[name]

    @settings(max_examples=300, deadline=1000, suppress_health_check=list(HealthCheck), database=None)
    @given(st.binary(max_size=4096))
    def run(data):
        target(data)

    run()


def test_walker_on_hostile_headers():
    """Hand-made hostile containers: sizes past the end, zero-size loops, terabyte claims."""
    import struct

    hdr = struct.pack("<IHHQ", 0xBA55ED50, 1, 16, 1 << 40)  # claims a terabyte
    fuzz_targets.walk_bytes(hdr + b"\0" * 64)
    loop = struct.pack("<IHHQ", 0xBA55ED50, 1, 16, 64) + struct.pack("<HHIQ", 2, 0x101, 0, 0) + b"\0" * 48
    fuzz_targets.walk_bytes(loop)  # an entry header claiming 0 bytes must not loop forever
