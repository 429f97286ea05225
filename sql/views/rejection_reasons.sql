-- Why items failed quality control: counts per suite, expectation and severity, latest config,
-- with one example (item and reason).
create or replace view rejection_reasons as
select suite, expectation, severity, count(distinct item_id) as items_failing,
       arg_min(reason, item_id) as example_reason, item_kind, min(item_id) as example_item
from qc_failures
group by suite, expectation, severity, item_kind
order by items_failing desc, suite asc, expectation asc;
