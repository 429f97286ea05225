-- Calls published in two BioTool splits: each pair of questions about one call (paraphrases, or
-- the very same question) on both sides of a split, e.g. train and test. A question published in
-- both splits pairs with itself (same_question).
create or replace view audit_leakage as
with placed as (
    select
        r.call_id, r.query_id, r.split,
        case r.split when 'train' then 1 when 'validation' then 2 else 3 end as split_rank,
        any_value(r.user_query) as question,
        min(r.file_name || ':' || r.record_number) as record
    from biotool_records as r
    where r.status = 'imported' and r.split is not null
    group by r.call_id, r.query_id, r.split
)

select
    a.call_id, c.function, c.arguments,
    a.split as first_split, a.query_id as first_item, a.question as first_question, a.record as first_record,
    b.split as second_split, b.query_id as second_item, b.question as second_question, b.record as second_record,
    a.query_id = b.query_id as same_question
from placed as a
inner join placed as b on a.call_id = b.call_id and a.split_rank < b.split_rank
inner join candidate_calls as c on a.call_id = c.call_id;
