-- Every failing item under the latest QC configuration (not the per-run summary rows), with
-- the question's text, how many items fail the same expectation and the item's rank among them
-- (by item id): the examples of `biocurate qc report` and the rejection_reasons counts.
create or replace view qc_failures as
select r.suite, r.expectation, r.severity, r.item_kind, r.item_id, r.reason, q.text,
       count(*) over (partition by r.suite, r.expectation) as items_failing,
       row_number() over (partition by r.suite, r.expectation order by r.item_id) as example_rank
from qc_current r
left join queries q on r.item_id = q.query_id and r.item_kind = 'query'
where not r.passed and r.item_kind <> 'expectation';
