-- Pass/fail counts per expectation under the latest QC configuration: the table of the Prefect
-- artifact and of `biocurate qc report`. Questions are counted from their 'checked' rows (one
-- per question) and failure rows; dataset-level items (database=..., tool=...) have a row each.
create or replace view qc_expectations as
with checked as (
    select count(*) as questions from qc_current
    where item_kind = 'query' and suite = 'qc'
),

items as (
    select suite, expectation, item_kind, count(*) as stored, count(*) filter (where not passed) as failed
    from qc_current
    where item_kind in ('query', 'dataset') and suite <> 'qc'
    group by all
),

expectations as (
    select e.suite, e.expectation, e.item_id as item_kind, e.severity,
           case when e.item_id = 'query' then c.questions else coalesce(i.stored, 0) end as checked,
           coalesce(i.failed, 0) as failed
    from qc_current e
    cross join checked c
    left join items i on e.suite = i.suite and e.expectation = i.expectation and e.item_id = i.item_kind
    where e.item_kind = 'expectation'
)

select suite, expectation, item_kind, severity, checked, checked - failed as passed, failed,
       round(100.0 * (checked - failed) / nullif(checked, 0), 1) as pass_pct
from expectations
order by suite, expectation;
