-- One version's items (the parameter, three times: the version id) with the split of the first version that held each, how
-- many splits its group spans in this version, and the most splits any of its calls spans (a
-- call set's steps, issue 18: every item using a call, alone or in a set, is in one split).
with groups as (
    select
        group_key,
        count(distinct split) as splits
    from dataset_items
    where version_id = ?
    group by all
),

steps as (
    select
        d.item_id,
        d.split,
        coalesce(st.call_id, d.call_id) as step_call
    from dataset_items as d
    left join call_set_steps as st on d.call_id = st.set_id
    where d.version_id = ?
),

calls as (
    select
        step_call,
        count(distinct split) as splits
    from steps
    group by all
),

item_calls as (
    select
        s.item_id,
        max(c.splits) as call_splits
    from steps as s
    inner join calls as c on s.step_call = c.step_call
    group by all
)

select
    d.item_id,
    d.group_key,
    d.split,
    f.split as first_split,
    g.splits as group_splits,
    ic.call_splits
from dataset_items as d
inner join first_published as f on d.item_id = f.item_id
inner join groups as g on d.group_key = g.group_key
inner join item_calls as ic on d.item_id = ic.item_id
where d.version_id = ?
