-- Every question imported from BioTool (`biocurate import biotool`): the item (its first
-- version's id), its current version (bound to our observation once its call answers), its call,
-- the BioTool split(s) it was published in and the records (file:number) it came from.
create or replace view audit_items as
with records as (
    select
        query_id,
        any_value(call_id) as call_id,
        list(distinct split) filter (where split is not null) as splits,
        list(file_name || ':' || record_number order by file_name, record_number) as records
    from biotool_records
    where status = 'imported'
    group by query_id
)

select
    r.query_id as item_id, c.query_id, r.call_id, k.function, c.text, c.observation_id, r.records,
    list_sort(r.splits) as splits,
    c.observation_id in (select b.claim_id from biotool_claims as b) as bound_to_claim
from records as r
inner join current_items as c on r.query_id = c.item_id
inner join candidate_calls as k on r.call_id = k.call_id;
