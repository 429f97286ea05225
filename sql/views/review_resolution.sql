-- Both rules that resolve several annotations of one pushed query, side by side, from the vote
-- counts of the latest annotations. Views cannot read the config: biocurate.review.state_column
-- picks the column of config.review.resolve.
--   any_reject_state: one reject rejects; else any edit makes it 'edited'; else 'accepted'.
--   majority_state: the most common verdict wins; a tie between the top verdicts is 'conflicting'.
-- pending = pushed, no annotation yet. `conflicting` flags any disagreement, whatever the rule.
create or replace view review_resolution as
with votes as (
    select
        query_id,
        count(*) as annotations,
        count(*) filter (where verdict = 'accept') as accepts,
        count(*) filter (where verdict = 'reject') as rejects,
        count(*) filter (where verdict = 'accept_with_edit') as edits,
        count(distinct verdict) > 1 as conflicting
    from latest_annotations
    group by query_id
),

counted as (
    select
        t.query_id,
        t.project_id,
        t.task_id,
        t.priority,
        coalesce(v.annotations, 0) as annotations,
        coalesce(v.accepts, 0) as accepts,
        coalesce(v.rejects, 0) as rejects,
        coalesce(v.edits, 0) as edits,
        coalesce(v.conflicting, false) as conflicting
    from review_tasks as t
    left join votes as v on t.query_id = v.query_id
),

ranked as (
    select
        *,
        greatest(accepts, rejects, edits) as top_votes
    from counted
)

select
    query_id,
    project_id,
    task_id,
    priority,
    annotations,
    accepts,
    rejects,
    edits,
    conflicting,
    case
        when annotations = 0 then 'pending'
        when rejects > 0 then 'rejected'
        when edits > 0 then 'edited'
        else 'accepted'
    end as any_reject_state,
    case
        when annotations = 0 then 'pending'
        when (accepts = top_votes)::int + (rejects = top_votes)::int + (edits = top_votes)::int > 1
            then 'conflicting'
        when rejects = top_votes then 'rejected'
        when edits = top_votes then 'edited'
        else 'accepted'
    end as majority_state
from ranked;
