-- One row per evaluation run: the overall scores (with their confidence intervals) side by side,
-- newest first. Compare runs of one version and split: where version_id = 'v0001' and split = 'test'.
-- Pivoted in eval_by_level.
create or replace view eval_leaderboard as
select r.run_id, r.label, r.kind, r.model, r.version_id, r.split, r.tools_mode, r.items,
       s.exact_match, s.exact_match_low, s.exact_match_high,
       s.name_accuracy, s.arg_precision, s.arg_recall, s.schema_validity,
       s.api_success, s.api_success_low, s.api_success_high,
       s.similarity, s.call_f1,
       r.embedder, r.transport, r.started_at
from eval_runs r
join eval_by_level s using (run_id)
where s.level = 'overall'
order by r.started_at desc;
