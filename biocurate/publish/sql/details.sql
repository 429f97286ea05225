-- The chosen items (_chosen: item_id, query_id of its current version, user_query, text_query_id,
-- state; _chosen_queries, _chosen_observations, _chosen_judgments and _chosen_annotations: its
-- rows of those tables, temporary views select_items makes) with everything the exports, the
-- manifest and the card need: call, observation id (of the current version), upstream release,
-- where its response came from (response_provenance view), who wrote the exported question, the
-- latest judgment, and who accepted it in review.
-- A question about a call set (issue 18, docs/item_kinds.md) has its first step's call columns,
-- observation and response (none for no_tool), and set_observation_id (its combined observation)
-- and set_spec (what was sampled: a no_tool's reason and answer).
-- reviewed_by (the one place this is decided; the parameter is the list of scripted annotators'
-- emails, lower-cased, config review.scripted_annotators):
--   human    a person's latest annotation accepted it (any annotator not in the list);
--   script   every accepting annotation is a scripted annotator's (the demo reviewer);
--   unknown  otherwise (an accepting annotation whose Label Studio user was not known at pull).
with scripted as (
    select cast(? as varchar []) as emails
),

reviewers as (
    select
        a.query_id,
        bool_or(a.annotator is not null and not list_contains(s.emails, lower(a.annotator))) as by_person,
        bool_and(coalesce(list_contains(s.emails, lower(a.annotator)), false)) as by_script
    -- this slice's annotations alone ranked (_chosen_annotations, as _chosen_judgments below)
    from latest_annotations_of('_chosen_annotations') as a
    cross join scripted as s
    where
        a.verdict in ('accept', 'accept_with_edit')
        and a.query_id in (select query_id from _chosen)
    group by a.query_id
),

-- this slice's judgments alone ranked (_chosen_judgments: select_items makes it over _chosen):
-- the view would rank every judgment of the store for every slice
judged as (
    select * from latest_judgments_of('_chosen_judgments')
)

select
    ch.item_id,
    ch.query_id,
    qc.kind,
    ch.user_query,
    ch.text_query_id,
    ch.state,
    qc.call_id,
    coalesce(qc.function, fc.function) as function,
    coalesce(qc.arguments, fc.arguments) as arguments,
    coalesce(qc.database, fc.database) as database,
    coalesce(qc.tool_group, fc.tool_group) as tool,
    coalesce(qc.category, fc.category) as category,
    coalesce(qc.entity_id, fc.entity_id) as entity_id,
    case when qc.kind = 'single' then qc.observation_id else fo.step_observation_id end as observation_id,
    case when qc.kind = 'single' then null else qc.observation_id end as set_observation_id,
    cs.spec::varchar as set_spec,
    r.upstream_release,
    r.transport,
    coalesce(rp.response_provenance, case when qc.kind = 'no_tool' then 'no call' else 'unknown' end)
        as response_provenance,
    tq.generator,
    tq.model as generator_model,
    tq.prompt_version,
    j.judge,
    j.model as judge_model,
    j.verdict as judge_verdict,
    case
        when rv.by_person then 'human'
        when rv.by_script then 'script'
        else 'unknown'
    end as reviewed_by
from _chosen as ch
inner join query_context_of('_chosen_queries', observed := '_chosen_observations') as qc
    on ch.query_id = qc.query_id
left join call_sets as cs on qc.call_id = cs.set_id
left join call_set_steps as fs on qc.call_id = fs.set_id and fs.position = 0
left join candidate_calls as fc on fs.call_id = fc.call_id
left join call_set_observations as fo on qc.observation_id = fo.observation_id and fo.position = 0
left join observations as so on fo.step_observation_id = so.observation_id
left join api_responses as r on coalesce(so.response_id, qc.response_id) = r.response_id
left join response_provenance as rp on coalesce(so.response_id, qc.response_id) = rp.response_id
left join queries as tq on ch.text_query_id = tq.query_id
left join judged as j on ch.query_id = j.query_id
left join reviewers as rv on ch.query_id = rv.query_id
order by ch.item_id
