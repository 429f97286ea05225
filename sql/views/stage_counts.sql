-- Rows per stage table and per run that first produced them.
create or replace view stage_counts as
with rows_by_run as (
    select 'entities' as stage, run_id from entities
    union all select 'candidate_calls', run_id from candidate_calls
    union all select 'api_responses', run_id from api_responses
    union all select 'observations', run_id from observations
    union all select 'queries', run_id from queries
    union all select 'judgments', run_id from judgments
    union all select 'qc_results', run_id from qc_results
    union all select 'review_tasks', run_id from review_tasks
    union all select 'annotations', run_id from annotations
    union all select 'dataset_versions', run_id from dataset_versions
    union all select 'query_replacements', run_id from query_replacements
)
select stage, run_id, count(*) as rows
from rows_by_run
group by all
order by stage, run_id;
