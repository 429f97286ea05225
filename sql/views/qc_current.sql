-- Quality-control results under the latest QC configuration: one row per item and expectation
-- (the latest, for dataset-level items such as 'database=NCBI' that are re-checked each run).
create or replace view qc_current as
with latest as (
    select arg_max(qc_config_hash, created_at) as qc_config_hash from qc_results
)

select *
from qc_results
where qc_config_hash = (select qc_config_hash from latest)
qualify row_number() over (partition by item_kind, item_id, suite, expectation order by created_at desc, qc_id asc) = 1;
