-- The chosen items (_chosen: item_id, query_id of its current version, user_query, text_query_id,
-- state) with everything the exports, the manifest and the card need: call, observation (of the
-- current version), upstream release, who wrote the exported question, and the latest judgment.
select
    ch.item_id,
    ch.user_query,
    ch.text_query_id,
    ch.state,
    qc.call_id,
    qc.function,
    qc.arguments,
    qc.database,
    qc.tool_group as tool,
    qc.category,
    qc.entity_id,
    qc.observation,
    r.upstream_release,
    r.transport,
    tq.generator,
    tq.model as generator_model,
    tq.prompt_version,
    j.judge,
    j.model as judge_model,
    j.verdict as judge_verdict
from _chosen as ch
inner join query_context as qc on ch.query_id = qc.query_id
left join api_responses as r on qc.response_id = r.response_id
left join queries as tq on ch.text_query_id = tq.query_id
left join latest_judgments as j on ch.query_id = j.query_id
order by ch.item_id
