-- Items, groups and calls per dataset version and split, each split's share of its version, and
-- leaking_groups: groups of this split that also appear in another split of the same version
-- (always 0 when publish did its job).
create or replace view split_summary as
with group_splits as (
    select version_id, group_key, count(distinct split) as splits
    from dataset_items
    group by all
),

per_split as (
    select d.version_id, d.split,
           count(*) as items,
           count(distinct d.group_key) as groups,
           count(distinct d.call_id) as calls,
           count(distinct d.database) as databases,
           count(distinct d.tool) as tools,
           count(distinct d.group_key) filter (where g.splits > 1) as leaking_groups
    from dataset_items d
    join group_splits g using (version_id, group_key)
    group by all
)

select version_id, split, items, groups, calls, databases, tools,
       round(items / sum(items) over (partition by version_id), 4) as share,
       leaking_groups
from per_split
order by version_id, case split when 'train' then 1 when 'validation' then 2 else 3 end;
