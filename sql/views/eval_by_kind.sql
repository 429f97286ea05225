-- Scores of each completed evaluation run per item kind (single, parallel, multi_step, no_tool):
-- exact match with its interval, the partial credit (call precision, recall, F1) and the per-call
-- metrics that apply (null for no_tool, whose right answer is no call).
create or replace view eval_by_kind as
with per_kind as (
    select * from eval_scores
    where level = 'kind'
)

select r.run_id, r.label, r.version_id, r.split, s.key as kind,
       max(s.n) filter (where s.metric = 'exact_match') as items,
       max(s.value) filter (where s.metric = 'exact_match') as exact_match,
       max(s.ci_low) filter (where s.metric = 'exact_match') as exact_match_low,
       max(s.ci_high) filter (where s.metric = 'exact_match') as exact_match_high,
       max(s.value) filter (where s.metric = 'call_precision') as call_precision,
       max(s.value) filter (where s.metric = 'call_recall') as call_recall,
       max(s.value) filter (where s.metric = 'call_f1') as call_f1,
       max(s.value) filter (where s.metric = 'name_accuracy') as name_accuracy,
       max(s.value) filter (where s.metric = 'arg_recall') as arg_recall,
       max(s.value) filter (where s.metric = 'api_success') as api_success,
       max(s.value) filter (where s.metric = 'similarity') as similarity
from eval_runs r
join per_kind s using (run_id)
where r.status = 'completed'
group by all
order by r.run_id, kind;
