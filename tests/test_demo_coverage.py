"""The offline demo can publish every catalog function: sampling (seeds + the catalog's sample
sections + the [sample] config) plans at least one valid call per function whose request the demo
snapshot answers (no replay miss), and that answer is not empty. Cheap: no pipeline run."""

from __future__ import annotations

from collections import defaultdict

import pytest

from biocurate.catalog import build_request, load_catalog
from biocurate.config import load_config
from biocurate.sampling import sample_calls
from biocurate.seeds import load_seeds, species_table
from biocurate.snapshot import Snapshot, fingerprint


@pytest.fixture(scope="module")
def answered() -> tuple[list[str], dict[str, list[bytes]]]:
    config = load_config()
    catalog_dir = config.path(config.sample.catalog_dir)
    catalog = load_catalog(catalog_dir)
    seeds = load_seeds(config.path(config.sample.seeds_dir), catalog_dir)
    calls = sample_calls(catalog, seeds.entities, species_table(catalog_dir), config.sample).calls
    snapshot = Snapshot(config.path(config.execute.snapshot_dir))
    bodies: dict[str, list[bytes]] = defaultdict(list)
    for call in calls:
        if not call["valid"]:
            continue
        req = build_request(catalog[call["function"]], call["arguments"])
        entry = snapshot.get(fingerprint(req.method, req.url, req.params, req.json_body or req.form))
        if entry is not None:
            bodies[call["function"]].append(entry[1])
    return sorted(t.name for t in catalog), bodies


def test_every_function_has_a_sampled_call_with_a_recorded_response(answered):
    functions, bodies = answered
    assert len(functions) >= 137
    missing = [f for f in functions if not bodies.get(f)]
    assert missing == [], f"{len(missing)} functions without a recorded answer to a sampled call: {missing}"


def test_every_function_has_a_non_empty_recorded_answer(answered):
    """An empty list or object is an `ok_empty` outcome, which synthesizes no question."""
    functions, bodies = answered
    empty = [f for f in functions if bodies.get(f) and all(b.strip() in (b"", b"[]", b"{}") for b in bodies[f])]
    assert empty == [], f"only empty answers recorded for {empty}"
