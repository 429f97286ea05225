-- Imported BioTool questions failing a quality rule (the current version of each item, under the
-- latest QC configuration), with the reason and the records they came from.
create or replace view audit_rule_failures as
select
    f.suite, f.expectation, f.severity, i.item_id, f.item_id as query_id, i.call_id, i.function,
    i.text as question, f.reason, i.splits, i.records,
    count(*) over (partition by f.suite, f.expectation) as items_failing,
    row_number() over (partition by f.suite, f.expectation order by i.item_id) as example_rank
from qc_failures as f
inner join audit_items as i on f.item_id = i.query_id;
