-- Items and calls per function in the latest published dataset version (functions with none are
-- absent: `biocurate tools --coverage` names them against the catalog).
create or replace view published_coverage as
with latest as (
    select version_id
    from dataset_versions
    order by created_at desc, version_id desc
    limit 1
)

select
    d.version_id,
    c.function,
    count(*) as items,
    count(distinct d.call_id) as calls,
    count(*) filter (where d.split = 'test') as test_items
from dataset_items as d
inner join latest as l on d.version_id = l.version_id
inner join candidate_calls as c on d.call_id = c.call_id
group by d.version_id, c.function
