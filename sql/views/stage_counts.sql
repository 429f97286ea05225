-- Rows per stage table and per run that first produced them.
create or replace view stage_counts as
with rows_by_run as (
    select 'entities' as stage, run_id from entities
    union all
    select 'candidate_calls' as stage, run_id from candidate_calls
    union all
    select 'call_sets' as stage, run_id from call_sets
    union all
    select 'call_set_steps' as stage, run_id from call_set_steps
    union all
    select 'api_responses' as stage, run_id from api_responses
    union all
    select 'observations' as stage, run_id from observations
    union all
    select 'queries' as stage, run_id from queries
    union all
    select 'judgments' as stage, run_id from judgments
    union all
    select 'qc_results' as stage, run_id from qc_results
    union all
    select 'review_tasks' as stage, run_id from review_tasks
    union all
    select 'annotations' as stage, run_id from annotations
    union all
    select 'dataset_versions' as stage, run_id from dataset_versions
    union all
    select 'query_replacements' as stage, run_id from query_replacements
)

select stage, run_id, count(*) as rows
from rows_by_run
group by all
order by stage, run_id;
