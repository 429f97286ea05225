"""The quality stage's schema check of a call's arguments (``quality_frames.ArgumentsCheck``)
gives jsonschema's own first error, or None, however it gets there."""

from __future__ import annotations

import random
from pathlib import Path

from jsonschema import Draft202012Validator

from biocurate.catalog import load_catalog
from biocurate.quality_frames import ArgumentsCheck, _TypesOnly

ROOT = Path(__file__).resolve().parent.parent
ODD = [
    None,
    True,
    False,
    0,
    1,
    1.0,
    1.5,
    -5,
    501,
    10**9,
    "",
    "0",
    "1",
    "true",
    "x",
    "GENE1",
    [],
    [1],
    ["a"],
    {},
    {"a": 1},
]


def jsonschema_error(validator: Draft202012Validator, args) -> str | None:
    errors = sorted(validator.iter_errors(args), key=lambda e: list(e.path))
    if not errors:
        return None
    where = ".".join(str(p) for p in errors[0].path) or "(arguments)"
    return f"parameter {where}: {errors[0].message}"


def test_arguments_check_gives_jsonschemas_first_error_for_every_catalog_function():
    rng = random.Random(19)
    fast = 0
    for tool in load_catalog(ROOT / "catalog"):
        schema = tool.validation_schema()
        check, plain = ArgumentsCheck(schema), Draft202012Validator(schema)
        fast += check.parts is not None
        names = [*schema["properties"], "not_a_parameter"]
        # the same arguments twice: the second verdicts come from what the check kept
        cases = [
            {n: rng.choice(ODD) for n in rng.sample(names, k=rng.randint(0, min(4, len(names))))} for _ in range(40)
        ]
        cases += [rng.choice(ODD) for _ in range(5)]
        for args in [*cases, *cases]:
            assert check.error(args) == jsonschema_error(plain, args), (tool.name, args)
    assert fast  # the fast path was taken, so it is what was compared


def test_arguments_check_keeps_verdicts_of_shared_values_and_forgets_them_beyond_its_bound():
    schema = {
        "type": "object",
        "properties": {"species": {"type": "string"}, "size": {"type": "integer", "maximum": 500}},
        "required": ["species"],
        "additionalProperties": False,
    }
    check = ArgumentsCheck(schema)
    check.KEPT = 3
    assert check.error({"species": "homo_sapiens", "size": 10}) is None
    assert (
        check.error({"species": "homo_sapiens", "size": 501})
        == "parameter size: 501 is greater than the maximum of 500"
    )
    assert check.error({"size": 10}) == "parameter (arguments): 'species' is a required property"
    assert len(check.values) <= 3
    for n in range(10):
        assert check.error({"species": f"s{n}"}) is None
        assert len(check.values) <= 3
    assert check.error({"species": 5}) == "parameter species: 5 is not of type 'string'"


def test_a_property_that_only_names_types_is_checked_by_type_as_jsonschema_checks_it():
    checker = Draft202012Validator.TYPE_CHECKER
    values = [*ODD, 2**70, -0.0, float("inf"), [[]], {"type": "x"}]
    by_type = 0
    for tool in load_catalog(ROOT / "catalog"):
        for name, sub in tool.validation_schema()["properties"].items():
            part = _TypesOnly.of(sub, checker)
            if part is None:
                continue
            by_type += 1
            plain = Draft202012Validator(sub)
            assert [part.is_valid(v) for v in values] == [plain.is_valid(v) for v in values], (tool.name, name)
    assert by_type >= 300  # most identifiers: a string or a number
    odd = [
        {"type": "strin"},
        {"anyOf": [{"type": "string"}, {}]},
        {"anyOf": []},
        {"type": "string", "pattern": "^P"},
        {"anyOf": [{"type": "string", "minLength": 2}]},
        {"enum": [0, 1]},
        True,
    ]
    assert [_TypesOnly.of(s, checker) for s in odd] == [None] * len(odd)  # left to jsonschema
    anything = _TypesOnly.of({"description": "any value"}, checker)
    assert anything is not None and all(anything.is_valid(v) for v in values)
    both = _TypesOnly.of({"anyOf": [{"type": ["string", "null"]}, {"type": "integer", "title": "n"}]}, checker)
    expected = [True, True, True, True, False, False]  # 3.0 is an integer to jsonschema; True is not
    assert both is not None and [both.is_valid(v) for v in ("x", None, 3, 3.0, 3.5, True)] == expected
