-- How each run's predictions went wrong: one row per run and kind of failure, with a count and an
-- example item. Kinds, first match wins: request_failed, no_call, malformed, wrong_name,
-- invalid_schema, wrong_arguments, then API outcomes of exactly matching calls that did not succeed.
create or replace view eval_failures as
with kinds as (
    select run_id, item_id,
           case when status in ('request_failed', 'no_call', 'malformed') then status
                when not name_match then 'wrong_name'
                when not schema_valid then 'invalid_schema'
                when not exact_match then 'wrong_arguments'
                when api_success is null then 'api_undecided_' || api_outcome
                when not api_success then 'api_' || api_outcome
                else 'correct' end as kind
    from eval_predictions
)

select run_id, kind, count(*) as items, min(item_id) as example_item
from kinds
group by all
order by run_id asc, items desc, kind asc;
