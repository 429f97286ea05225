-- Every call imported from BioTool with what became of it: rejected by the catalog, not executed
-- yet, or the status of our latest answer against the observation BioTool published (the drift
-- watch's statuses: unchanged, body_changed, changed, gone, failed; null: it answers and BioTool
-- published no observation to compare). A call with several claimed observations shows the worst.
create or replace view audit_calls as
with imported as (
    select call_id, count(distinct query_id) as items,
           list_sort(list(distinct split) filter (where split is not null)) as splits,
           min(file_name || ':' || record_number) as first_record
    from biotool_records
    where status = 'imported'
    group by call_id
),

latest as (
    select
        k.*,
        case k.status when 'gone' then 5 when 'failed' then 4 when 'changed' then 3
            when 'body_changed' then 2 when 'unchanged' then 1 else 0 end as severity
    from biotool_checks as k
    qualify row_number() over (partition by k.claim_id order by k.checked_at desc, k.check_id asc) = 1
),

per_call as (
    select
        call_id,
        arg_max(status, severity) as status, arg_max(basis, severity) as basis,
        arg_max(detail, severity) as detail, arg_max(new_outcome, severity) as outcome,
        sum(facts_checked) as facts_checked, sum(facts_missing) as facts_missing, max(checked_at) as checked_at
    from latest
    group by call_id
)

select
    c.call_id, c.function, c.arguments, c.database, c.tool_group, i.items, i.splits, i.first_record,
    c.valid, c.invalid_reason,
    p.status, p.basis, p.detail, p.outcome, p.facts_checked, p.facts_missing, p.checked_at,
    case
        when not c.valid then 'rejected'
        when p.call_id is null then 'not executed'
        else coalesce(p.status, 'answers (no claim)')
    end as state
from imported as i
inner join candidate_calls as c on i.call_id = c.call_id
left join per_call as p on i.call_id = p.call_id;
