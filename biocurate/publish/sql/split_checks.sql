-- One version's items (?: the version id, twice) with the split of the first version that held
-- each, and how many splits its group spans in this version.
with groups as (
    select
        group_key,
        count(distinct split) as splits
    from dataset_items
    where version_id = ?
    group by all
)

select
    d.item_id,
    d.group_key,
    d.split,
    f.split as first_split,
    g.splits as group_splits
from dataset_items as d
inner join first_published as f on d.item_id = f.item_id
inner join groups as g on d.group_key = g.group_key
where d.version_id = ?
