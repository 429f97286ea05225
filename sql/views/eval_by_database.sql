-- Scores of each completed evaluation run per database (value and confidence interval of the
-- headline metrics), for comparing runs database by database.
create or replace view eval_by_database as
with per_database as (
    select * from eval_scores
    where level = 'database'
)

select r.run_id, r.label, r.version_id, r.split, s.key as database,
       max(s.n) filter (where s.metric = 'exact_match') as items,
       max(s.value) filter (where s.metric = 'exact_match') as exact_match,
       max(s.ci_low) filter (where s.metric = 'exact_match') as exact_match_low,
       max(s.ci_high) filter (where s.metric = 'exact_match') as exact_match_high,
       max(s.value) filter (where s.metric = 'name_accuracy') as name_accuracy,
       max(s.value) filter (where s.metric = 'arg_recall') as arg_recall,
       max(s.value) filter (where s.metric = 'api_success') as api_success,
       max(s.value) filter (where s.metric = 'similarity') as similarity
from eval_runs r
join per_database s using (run_id)
where r.status = 'completed'
group by all
order by r.run_id, database;
