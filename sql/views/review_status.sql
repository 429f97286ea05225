-- Review state per pushed query under the any_reject rule (one reject rejects), with the vote
-- counts and a `conflicting` flag when annotators disagree. Views cannot read the config, so the
-- majority rule lives in biocurate.review.resolved_verdicts, built on these counts.
-- pending = pushed, no annotation yet. Only the latest version of each server annotation counts.
create or replace view review_status as
with votes as (
    select query_id,
           count(*) as annotations,
           count(*) filter (where verdict = 'accept') as accepts,
           count(*) filter (where verdict = 'reject') as rejects,
           count(*) filter (where verdict = 'accept_with_edit') as edits,
           count(distinct verdict) > 1 as conflicting
    from latest_annotations
    group by query_id
)
select t.query_id, t.project_id, t.task_id, t.priority,
       coalesce(v.annotations, 0) as annotations,
       coalesce(v.accepts, 0) as accepts,
       coalesce(v.rejects, 0) as rejects,
       coalesce(v.edits, 0) as edits,
       coalesce(v.conflicting, false) as conflicting,
       case when v.query_id is null then 'pending'
            when v.rejects > 0 then 'rejected'
            when v.edits > 0 then 'edited'
            else 'accepted' end as state
from review_tasks t
left join votes v on v.query_id = t.query_id;
