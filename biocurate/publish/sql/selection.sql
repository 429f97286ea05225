-- Every item (current_items, copied into the temp table _selection_items by select_items: its
-- current version, a drift replacement if any) with what decides
-- whether it is exported: its review state under each rule, whether it (and the reviewer's edited
-- question, if any) was quality-checked and survived, and the reviewer's latest edited call.
-- A question about a call set (issue 18: parallel, multi_step, no_tool) has no call of its own:
-- `kind` says which, `functions` lists its steps' functions in order (empty for no_tool).
-- In no order: select_items sorts the chosen ones by item_id. Ordered here, DuckDB would hold
-- and sort every row (400k questions at 100k calls, with their texts) before streaming the first.
with call_edits as (
    select
        query_id,
        arg_max(edited_call, updated_at) as edited_call
    from latest_annotations
    where verdict = 'accept_with_edit'
    group by query_id
),

edits as (
    select
        parent_query_id as query_id,
        arg_max(query_id, created_at) as edit_id
    from queries
    where parent_query_id is not null
    group by parent_query_id
),

checked as (
    select distinct item_id as query_id from qc_results
    where item_kind = 'query'
),

alive as (select query_id from survivors),

set_functions as (
    select
        st.set_id,
        list(sc.function order by st.position) as functions
    from call_set_steps as st
    inner join candidate_calls as sc on st.call_id = sc.call_id
    group by st.set_id
)

select
    q.item_id,
    q.query_id,
    q.text,
    v.any_reject_state,
    v.majority_state,
    c.function,
    c.arguments,
    coalesce(cs.kind, 'single') as kind,
    case
        when c.call_id is not null then [c.function]
        else coalesce(sf.functions, cast([] as varchar []))
    end as functions,
    ck.query_id is not null as checked,
    s.query_id is not null as survives,
    e.edit_id,
    eq.text as edit_text,
    ec.query_id is not null as edit_checked,
    es.query_id is not null as edit_survives,
    ce.edited_call
from _selection_items as q
left join candidate_calls as c on q.call_id = c.call_id
left join call_sets as cs on q.call_id = cs.set_id
left join set_functions as sf on q.call_id = sf.set_id
left join review_resolution as v on q.query_id = v.query_id
left join checked as ck on q.query_id = ck.query_id
left join alive as s on q.query_id = s.query_id
left join edits as e on q.query_id = e.query_id
left join queries as eq on e.edit_id = eq.query_id
left join checked as ec on e.edit_id = ec.query_id
left join alive as es on e.edit_id = es.query_id
left join call_edits as ce on q.query_id = ce.query_id
where q.parent_query_id is null and (c.call_id is not null or cs.set_id is not null)
