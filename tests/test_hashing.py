"""canonical_json is every content hash's text: whichever encoder makes it, the same bytes."""

import datetime as dt
import enum
import json
import random
import struct

import pytest

from biocurate.hashing import canonical_json


def _standard(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class _Kind(enum.StrEnum):
    single = "single"


CASES = {
    "a call": {"name": "get_uniprotkb_entry", "arguments": {"accession": "P04637", "size": 5, "reviewed": True}},
    "calls with observations": [
        {"name": "a", "arguments": {"q": "x"}, "observation": "é\n\t\x1f\u2028\x7f" * 300, "depends_on": None},
        {"name": "b", "arguments": {}, "observation": None, "depends_on": 0},
    ],
    "small floats": {"p": 1e-05, "q": 2.5e-07, "r": [0.0001, 0.00009999, -3e-5]},
    "large floats": [1e16, 1.5e300, 123456789012345680.0, -0.0, 5e-324, 1e22],
    "not finite": [float("nan"), float("inf"), float("-inf")],
    "an integer beyond 64 bits": {"n": 2**70, "m": -(2**64)},
    "a lone surrogate": {"text": "a\ud800b"},
    "keys out of order, astral and private-use": {"\U0001f600": 1, "\ue000": 2, "b": 3, "a": {"z": 1, "y": 2}},
    "a tuple": ("a", 1, None),
    "a str enum": {"kind": _Kind.single},
    "a date (default=str)": {"at": dt.date(2026, 12, 3)},
    "integer keys": {1: "one", 2: "two"},
    "empty": [{}, [], ""],
}


@pytest.mark.parametrize("case", CASES)
def test_canonical_json_is_the_standard_librarys_sorted_compact_json(case):
    assert canonical_json(CASES[case]) == _standard(CASES[case])


def test_canonical_json_writes_every_float_as_the_standard_library_does():
    rng = random.Random(19)
    values = [struct.unpack("d", rng.randbytes(8))[0] for _ in range(20_000)]
    values += [rng.uniform(-1, 1) * 10 ** rng.uniform(-8, 20) for _ in range(20_000)]
    values += [round(rng.uniform(0, 1000), rng.randint(0, 6)) for _ in range(5_000)]
    assert canonical_json({"values": values}) == _standard({"values": values})
    assert all(canonical_json(v) == _standard(v) for v in values[:2_000])
