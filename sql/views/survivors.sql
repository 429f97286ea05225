-- Queries that passed quality control: checked under the latest QC config that checked them,
-- with no blocking failure there, and not superseded by a drift replacement (query_replacements).
-- Only these go to human review.
create or replace view survivors as
with latest as (
    select item_id, arg_max(qc_config_hash, created_at) as qc_config_hash
    from qc_results
    where item_kind = 'query'
    group by item_id
),

blocked as (
    select distinct r.item_id
    from qc_results r
    join latest l on r.item_id = l.item_id and r.qc_config_hash = l.qc_config_hash
    where not r.passed and r.severity = 'blocking'
)

select q.*
from queries q
join latest l on q.query_id = l.item_id
where q.query_id not in (select item_id from blocked)
  and q.query_id not in (select query_id from query_replacements);
