-- Scores of each completed evaluation run side by side, one row per level (overall, database, kind,
-- tool, ...) and key: the one pivot of eval_scores, which eval_leaderboard, eval_by_kind and
-- eval_by_database each select from. `items` is the number of items behind the exact match; a metric
-- a level does not score is null (the call metrics for no_tool, whose right answer is no call).
create or replace view eval_by_level as
select r.run_id, r.label, r.version_id, r.split, s.level, s.key,
       max(s.n) filter (where s.metric = 'exact_match') as items,
       max(s.value) filter (where s.metric = 'exact_match') as exact_match,
       max(s.ci_low) filter (where s.metric = 'exact_match') as exact_match_low,
       max(s.ci_high) filter (where s.metric = 'exact_match') as exact_match_high,
       max(s.value) filter (where s.metric = 'call_precision') as call_precision,
       max(s.value) filter (where s.metric = 'call_recall') as call_recall,
       max(s.value) filter (where s.metric = 'call_f1') as call_f1,
       max(s.value) filter (where s.metric = 'name_accuracy') as name_accuracy,
       max(s.value) filter (where s.metric = 'arg_precision') as arg_precision,
       max(s.value) filter (where s.metric = 'arg_recall') as arg_recall,
       max(s.value) filter (where s.metric = 'schema_validity') as schema_validity,
       max(s.value) filter (where s.metric = 'api_success') as api_success,
       max(s.ci_low) filter (where s.metric = 'api_success') as api_success_low,
       max(s.ci_high) filter (where s.metric = 'api_success') as api_success_high,
       max(s.value) filter (where s.metric = 'similarity') as similarity
from eval_runs r
join eval_scores s using (run_id)
where r.status = 'completed'
group by all;
