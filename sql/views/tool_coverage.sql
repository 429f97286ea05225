-- Candidate calls, successful observations and queries per database, category and tool.
create or replace view tool_coverage as
with calls as (
    select c.database, c.category, c.tool_group, c.function, c.call_id, c.valid
    from candidate_calls c
)

select calls.database, calls.category, calls.tool_group, calls.function,
       count(distinct calls.call_id) as calls,
       count(distinct o.call_id) as calls_observed,
       count(distinct q.query_id) as queries
from calls
left join observations o on calls.call_id = o.call_id
left join queries q on calls.call_id = q.call_id
group by all
order by calls.database, calls.tool_group, calls.function;
