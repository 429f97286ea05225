-- Scores of each completed evaluation run per database (value and confidence interval of the
-- headline metrics), for comparing runs database by database. Pivoted in eval_by_level.
create or replace view eval_by_database as
select run_id, label, version_id, split, key as database, items,
       exact_match, exact_match_low, exact_match_high,
       name_accuracy, arg_recall, api_success, similarity
from eval_by_level
where level = 'database'
order by run_id, database;
