-- How each run's predictions went wrong: one row per run, item kind and kind of failure, with a
-- count and an example item. Kinds, first match wins: request_failed; for a no_tool item
-- (right answer: no call) correct or called_a_tool; for a parallel or multi_step item
-- missing_calls, extra_calls, wrong_calls (a set not exactly right); then no_call, malformed,
-- wrong_name, invalid_schema, wrong_arguments, then API outcomes of exactly matching calls that
-- did not succeed.
create or replace view eval_failures as
with kinds as (
    select run_id, item_id, coalesce(kind, 'single') as item_kind,
           case when status = 'request_failed' then status
                when kind = 'no_tool' and exact_match then 'correct'
                when kind = 'no_tool' then 'called_a_tool'
                when kind in ('parallel', 'multi_step') and not exact_match and call_predicted < call_gold
                    then 'missing_calls'
                when kind in ('parallel', 'multi_step') and not exact_match and call_predicted > call_gold
                    then 'extra_calls'
                when kind in ('parallel', 'multi_step') and not exact_match then 'wrong_calls'
                when status in ('no_call', 'malformed') then status
                when not name_match then 'wrong_name'
                when not schema_valid then 'invalid_schema'
                when not exact_match then 'wrong_arguments'
                when api_success is null then 'api_undecided_' || api_outcome
                when not api_success then 'api_' || api_outcome
                else 'correct' end as kind
    from eval_predictions
)

select run_id, item_kind, kind, count(*) as items, min(item_id) as example_item
from kinds
group by all
order by run_id asc, items desc, kind asc;
