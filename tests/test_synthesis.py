"""The offline template generator: varied, grammatical questions that keep identifiers verbatim."""
from __future__ import annotations

import json
import re
from dataclasses import replace

from biocurate.catalog import Catalog, load_catalog
from biocurate.stages import run_stage
from biocurate.store import Store
from biocurate.synthesis import synthesize
from biocurate.vocabulary import identifiers
from tests.test_llm import seed_observed_calls


def test_offline_generator_gives_three_phrasings_per_function_with_identifiers(demo_config):
    for stage in ("sample", "execute", "synthesize"):
        run_stage(stage, demo_config, "r1")
    catalog = load_catalog()
    with Store(demo_config.store.path).open(read_only=True) as con:
        rows = con.execute("select c.function, c.arguments, q.text, q.generator, q.prompt_version from queries q "
                           "join candidate_calls c using (call_id)").fetchall()
        observed = {f for (f,) in con.execute(
            "select distinct function from candidate_calls join observations using (call_id)").fetchall()}
    texts: dict[str, set[str]] = {}
    for function, arguments, text, generator, version in rows:
        assert generator == "template" and version.startswith("template-")
        for ident in identifiers(catalog[function], json.loads(arguments)):
            assert ident in text, (function, ident, text)
        assert not re.search(r"\{[a-z_]+\}", text), text
        assert text[0].isupper() and text.rstrip()[-1] in "?.", text
        texts.setdefault(function, set()).add(text)
    assert set(texts) == observed
    few = {f: len(t) for f, t in texts.items() if len(t) < 3}
    assert few == {}


def test_calls_of_a_function_without_templates_are_counted_under_one_reason(demo_config):
    """Every such call adds to the same failure count (it was written under one key, read under another)."""
    catalog = load_catalog()
    tool = catalog["lookup_by_symbol"]
    bare = Catalog([replace(tool, function=tool.function.model_copy(update={"questions": None}))])
    with Store(demo_config.store.path).open() as con:
        seed_observed_calls(con)
        summary = synthesize(demo_config, con, bare, "r1")
        n_queries = con.execute("select count(*) from queries").fetchall()[0][0]
    assert n_queries == 0 and summary.calls == 2
    assert summary.failures == {"lookup_by_symbol: no question templates": 2}
