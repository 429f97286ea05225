-- One version's items (``version_items``, named by the caller: a recorded version's dataset_items
-- rows, or the spooled rows of one about to be recorded; the parameter: the split names) with the
-- split of the first version that held each (this one, for an item no earlier version held), how
-- many splits its group spans in this version, and the most splits any of its calls spans (a call
-- set's steps, issue 18: every item using a call, alone or in a set, is in one split): only the
-- items a check could flag (a value out of place, a null, an item id twice), so that a version that
-- passes gives no rows and the checks (GX) run on the few rows that fail, whatever its size.
with groups as (
    select
        group_key,
        count(distinct split) as splits
    from version_items
    group by all
),

steps as (
    select
        d.item_id,
        d.split,
        coalesce(st.call_id, d.call_id) as step_call
    from version_items as d
    left join call_set_steps as st on d.call_id = st.set_id
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
),

checked as (
    select
        d.item_id,
        d.group_key,
        d.split,
        coalesce(f.split, d.split) as first_split,
        g.splits as group_splits,
        ic.call_splits
    from version_items as d
    left join first_published as f on d.item_id = f.item_id
    inner join groups as g on d.group_key = g.group_key
    inner join item_calls as ic on d.item_id = ic.item_id
),

twice as (
    select item_id from checked
    group by item_id
    having count(*) > 1
)

select c.*
from checked as c
where
    c.group_splits is distinct from 1
    or c.call_splits is distinct from 1
    or c.split is null
    or not list_contains(cast(? as varchar []), c.split)
    or c.first_split is null
    or c.split != c.first_split
    or c.item_id is null
    or c.item_id in (select t.item_id from twice as t)
