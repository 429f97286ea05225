-- Why items failed quality control: counts per suite, expectation and severity, latest config.
create or replace view rejection_reasons as
with latest as (
    select arg_max(qc_config_hash, created_at) as qc_config_hash from qc_results
)
select suite, expectation, severity, count(distinct item_id) as items_failing,
       any_value(reason) as example_reason
from qc_results
where not passed and qc_config_hash = (select qc_config_hash from latest)
group by all
order by items_failing desc;
