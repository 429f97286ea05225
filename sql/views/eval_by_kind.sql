-- Scores of each completed evaluation run per item kind (single, parallel, multi_step, no_tool):
-- exact match with its interval, the partial credit (call precision, recall, F1) and the per-call
-- metrics that apply (null for no_tool, whose right answer is no call). Pivoted in eval_by_level.
create or replace view eval_by_kind as
select run_id, label, version_id, split, key as kind, items,
       exact_match, exact_match_low, exact_match_high,
       call_precision, call_recall, call_f1,
       name_accuracy, arg_recall, api_success, similarity
from eval_by_level
where level = 'kind'
order by run_id, kind;
