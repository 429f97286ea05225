"""The one store-filling helper for tests: rows as each stage would write them (calls with their
responses and observations, questions with judgments and QC results, review tasks and
annotations, and the call sets of issue 18), without running the stages.

The call-set rows follow the contract of ``sql/schema/009_call_sets.sql`` and ``docs/item_kinds.md``.
"""

from __future__ import annotations

import json
from datetime import timedelta

from biocurate.catalog import load_catalog
from biocurate.hashing import content_hash
from biocurate.store import insert_new, utcnow
from tests.conftest import ROOT

CATALOG = load_catalog(ROOT / "catalog")


class Rows:
    """Inserts calls, observations, queries, judgments, QC results, review tasks and annotations."""

    def __init__(self, con):
        self.con = con
        self.tick = 0
        self.task = 0

    def now(self):
        self.tick += 1
        return utcnow() + timedelta(seconds=self.tick)

    def call(
        self,
        function: str,
        arguments: dict,
        entity: str | None = None,
        release: str | None = None,
        observation: str | None = None,
        origin: str | None = None,
        note: str | None = None,
        outcome: str = "ok",
        call_id: str | None = None,
    ) -> str:
        """A call with its response (replayed; ``origin``/``note``: the snapshot entry's) and observation.
        ``call_id``: another call of the same arguments (else one call per function and arguments); a
        function not in the catalog has the database, tool group and category "unknown"."""
        tool = CATALOG.tools.get(function)
        database, group, category = (tool.database, tool.group, tool.category) if tool else ("unknown",) * 3
        call_id = call_id or content_hash(function, arguments)
        response_id = content_hash("response", call_id)
        insert_new(
            self.con,
            "candidate_calls",
            [
                {
                    "call_id": call_id,
                    "function": function,
                    "arguments": json.dumps(arguments, sort_keys=True),
                    "entity_id": entity,
                    "template": "t",
                    "database": database,
                    "tool_group": group,
                    "category": category,
                    "valid": True,
                }
            ],
        )
        insert_new(
            self.con,
            "api_responses",
            [
                {
                    "response_id": response_id,
                    "call_id": call_id,
                    "fingerprint": call_id,
                    "method": "GET",
                    "url": f"https://example.org/{function}",
                    "status_code": 200,
                    "outcome": outcome,
                    "transport": "replay",
                    "upstream_release": release,
                    "snapshot_origin": origin,
                    "snapshot_provenance": note,
                    "fetched_at": utcnow(),
                }
            ],
        )
        insert_new(
            self.con,
            "observations",
            [
                {
                    "observation_id": content_hash("observation", call_id),
                    "call_id": call_id,
                    "response_id": response_id,
                    "text": observation or f"{function}: 1 record for {json.dumps(arguments)}",
                    "builder": "b",
                    "chars": 30,
                }
            ],
        )
        return call_id

    def query(
        self,
        call_id: str,
        text: str,
        qc: bool | None = True,
        parent: str | None = None,
        annotator: str | None = None,
        query_id: str | None = None,
        verdict: str | None = "accept",
        score: float = 0.9,
    ) -> str:
        """A question on the call's latest observation with the rules judge's ``verdict`` (None: not
        judged yet) and, unless ``qc`` is None, a QC result; ``parent``: a reviewer's edit of it."""
        generator, model = ("human_edit", annotator) if parent else ("template", "template-v1")
        query_id = query_id or content_hash(call_id, text, generator, model)
        (observation_id,) = self.con.execute(
            "select observation_id from observations where call_id = ? order by created_at desc limit 1", [call_id]
        ).fetchall()[0]
        insert_new(
            self.con,
            "queries",
            [
                {
                    "query_id": query_id,
                    "call_id": call_id,
                    "observation_id": observation_id,
                    "text": text,
                    "style": "specific",
                    "generator": generator,
                    "model": model,
                    "prompt_version": "review" if parent else "template-1",
                    "parent_query_id": parent,
                    "created_at": self.now(),
                }
            ],
        )
        if verdict is not None:
            insert_new(
                self.con,
                "judgments",
                [
                    {
                        "judgment_id": content_hash("j", query_id),
                        "query_id": query_id,
                        "judge": "rules",
                        "model": "rules-v1",
                        "prompt_version": "v1",
                        "verdict": verdict,
                        "score": score,
                        "reason": "fine",
                    }
                ],
            )
        if qc is not None:
            insert_new(
                self.con,
                "qc_results",
                [
                    {
                        "qc_id": content_hash("qc", query_id),
                        "item_kind": "query",
                        "item_id": query_id,
                        "suite": "queries",
                        "expectation": "length",
                        "passed": qc,
                        "severity": "blocking",
                        "reason": None if qc else "too short",
                        "qc_config_hash": "h",
                    }
                ],
            )
        return query_id

    def push(self, query_id: str) -> int:
        self.task += 1
        insert_new(
            self.con,
            "review_tasks",
            [
                {
                    "query_id": query_id,
                    "content_hash": "c",
                    "project_id": 1,
                    "task_id": self.task,
                    "priority": 0.5,
                    "pushed_at": utcnow(),
                    "updated_at": utcnow(),
                }
            ],
        )
        return self.task

    def annotate(self, query_id: str, verdict: str, annotator: str = "rev1@example.org", **answers) -> None:
        task_id = self.con.execute("select task_id from review_tasks where query_id = ?", [query_id]).fetchall()
        task_id = task_id[0][0] if task_id else self.push(query_id)
        ls_id = int(content_hash(query_id, annotator, length=7), 16)
        updated = self.now()
        insert_new(
            self.con,
            "annotations",
            [
                {
                    "annotation_id": content_hash(ls_id, str(updated)),
                    "ls_annotation_id": ls_id,
                    "task_id": task_id,
                    "query_id": query_id,
                    "annotator": annotator,
                    "verdict": verdict,
                    "reject_reason": answers.get("reject_reason"),
                    "edited_query": answers.get("edited_query"),
                    "edited_call": answers.get("edited_call"),
                    "created_at": updated,
                    "updated_at": updated,
                    "pulled_at": updated,
                }
            ],
        )

    def accepted(
        self, function: str, arguments: dict, texts: list[str], entity: str | None = None, release: str | None = None
    ) -> list[str]:
        call_id = self.call(function, arguments, entity, release)
        ids = []
        for text in texts:
            ids.append(self.query(call_id, text))
            self.annotate(ids[-1], "accept")
        return ids

    def call_set(
        self,
        kind: str,
        steps: list[tuple[str, dict, str]],
        template: str = "t",
        spec: dict | None = None,
        fed_by: dict[int, dict] | None = None,
    ) -> str:
        """A call set (``parallel``, ``multi_step`` or ``no_tool``) with its steps, each a call
        ``(function, arguments, observation text)`` with its response and observation, and the
        set's combined observation; returns the set_id (a question's call_id). A multi_step step
        after the first depends on the one before it; ``fed_by`` gives a step's fed_by record."""
        first = self.call(*steps[0][:2], observation=steps[0][2]) if steps else None
        set_id = content_hash("set", kind, template, first or json.dumps(spec or {}, sort_keys=True))
        insert_new(
            self.con,
            "call_sets",
            [{"set_id": set_id, "kind": kind, "template": template, "spec": json.dumps(spec or {})}],
        )
        step_observations = []
        for position, (function, arguments, text) in enumerate(steps):
            call_id = first if position == 0 else self.call(function, arguments, observation=text)
            insert_new(
                self.con,
                "call_set_steps",
                [
                    {
                        "set_id": set_id,
                        "position": position,
                        "call_id": call_id,
                        "depends_on": position - 1 if kind == "multi_step" and position else None,
                        "fed_by": json.dumps((fed_by or {}).get(position)) if (fed_by or {}).get(position) else None,
                    }
                ],
            )
            step_observations.append(
                self.con.execute(
                    "select observation_id, response_id, text from observations where call_id = ? "
                    "order by created_at desc limit 1",
                    [call_id],
                ).fetchall()[0]
            )
        text = json.dumps([t for _, _, t in step_observations])
        responses = [r for _, r, _ in step_observations] or [set_id]
        observation_id = content_hash(set_id, text)
        insert_new(
            self.con,
            "observations",
            [
                {
                    "observation_id": observation_id,
                    "call_id": set_id,
                    "response_id": content_hash(*responses),
                    "text": text,
                    "builder": "call_set",
                    "chars": len(text),
                }
            ],
        )
        insert_new(
            self.con,
            "call_set_observations",
            [
                {"observation_id": observation_id, "position": i, "step_observation_id": o}
                for i, (o, _, _) in enumerate(step_observations)
            ],
        )
        return set_id


def observed_lookup_calls(con, calls: list[tuple[str, dict]]) -> None:
    """Ensembl gene lookups ``(function, arguments)`` with an observation each and no question yet:
    what synthesis starts from."""
    for function, args in calls:
        call_id = content_hash("call", function, args)
        insert_new(
            con,
            "candidate_calls",
            [
                {
                    "call_id": call_id,
                    "function": function,
                    "arguments": json.dumps(args),
                    "template": "t",
                    "database": "Ensembl",
                    "tool_group": "lookup",
                    "category": "genomics",
                    "valid": True,
                }
            ],
        )
        text = json.dumps({"id": "ENSG00000139618", "display_name": args["symbol"], "seq_region_name": "13"})
        insert_new(
            con,
            "observations",
            [
                {
                    "observation_id": content_hash("obs", call_id),
                    "call_id": call_id,
                    "response_id": "r",
                    "text": text,
                    "builder": "ensembl_lookup",
                    "chars": len(text),
                }
            ],
        )
