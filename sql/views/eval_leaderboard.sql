-- One row per evaluation run: the overall scores (with their confidence intervals) side by side,
-- newest first. Compare runs of one version and split: where version_id = 'v0001' and split = 'test'.
create or replace view eval_leaderboard as
with overall as (
    select * from eval_scores
    where level = 'overall'
)

select r.run_id, r.label, r.kind, r.model, r.version_id, r.split, r.tools_mode, r.items,
       max(value) filter (where metric = 'exact_match') as exact_match,
       max(ci_low) filter (where metric = 'exact_match') as exact_match_low,
       max(ci_high) filter (where metric = 'exact_match') as exact_match_high,
       max(value) filter (where metric = 'name_accuracy') as name_accuracy,
       max(value) filter (where metric = 'arg_precision') as arg_precision,
       max(value) filter (where metric = 'arg_recall') as arg_recall,
       max(value) filter (where metric = 'schema_validity') as schema_validity,
       max(value) filter (where metric = 'api_success') as api_success,
       max(ci_low) filter (where metric = 'api_success') as api_success_low,
       max(ci_high) filter (where metric = 'api_success') as api_success_high,
       max(value) filter (where metric = 'similarity') as similarity,
       max(value) filter (where metric = 'call_f1') as call_f1,
       r.embedder, r.transport, r.started_at
from eval_runs r
join overall using (run_id)
where r.status = 'completed'
group by all
order by r.started_at desc;
