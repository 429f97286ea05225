-- Pass/fail counts per expectation under the latest QC configuration: the table of the Prefect
-- artifact and of `biocurate qc report`.
create or replace view qc_expectations as
select suite, expectation, item_kind, severity,
       count(*) as checked,
       count(*) filter (where passed) as passed,
       count(*) filter (where not passed) as failed,
       round(100.0 * count(*) filter (where passed) / count(*), 1) as pass_pct
from qc_current
group by all
order by suite, expectation;
