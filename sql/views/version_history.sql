-- One row per published dataset version: its parent, size per split, and the items added,
-- removed and changed (question, call or observation) since the parent.
create or replace view version_history as
with sizes as (
    select version_id,
           count(*) as items,
           count(*) filter (where split = 'train') as train,
           count(*) filter (where split = 'validation') as validation,
           count(*) filter (where split = 'test') as test
    from dataset_items
    group by all
),

pairs as (
    select version_id, parent_id from dataset_versions
),

changes as (
    select p.version_id,
           count(b.item_id) filter (where a.item_id is null) as added,
           count(b.item_id) filter (where a.item_id is not null and (a.user_query <> b.user_query
               or a.function_calling::varchar <> b.function_calling::varchar or a.observation <> b.observation)) as changed
    from pairs p
    join dataset_items b on p.version_id = b.version_id
    left join dataset_items a on p.parent_id = a.version_id and b.item_id = a.item_id
    group by all
),

removals as (
    select p.version_id, count(a.item_id) as removed
    from pairs p
    join dataset_items a on p.parent_id = a.version_id
    left join dataset_items b on p.version_id = b.version_id and a.item_id = b.item_id
    where b.item_id is null
    group by all
)

select v.version_id, v.parent_id, v.created_at,
       coalesce(s.items, 0) as items, s.train, s.validation, s.test,
       coalesce(c.added, 0) as added, coalesce(r.removed, 0) as removed, coalesce(c.changed, 0) as changed,
       v.code_version, v.config_hash, v.path
from dataset_versions v
left join sizes s using (version_id)
left join changes c using (version_id)
left join removals r using (version_id)
order by v.version_id;
