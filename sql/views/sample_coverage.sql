-- The sampled design: candidate calls per database and topic category, with how many
-- functions and tool groups each covers and how many calls use optional parameters.
create or replace view sample_coverage as
with calls as (
    select c.database, c.category, c.tool_group, c.function, c.valid,
           json_keys(c.arguments) as keys,
           t.schema_json
    from candidate_calls c
    left join tools t using (function)
)

select database, category,
       count(*) as calls,
       count(*) filter (where valid) as valid_calls,
       count(distinct tool_group) as tool_groups,
       count(distinct function) as functions,
       count(*) filter (
           where len(keys) > len(coalesce(json_extract_string(schema_json, '$.function.parameters.required[*]'), []))
       ) as calls_with_optional_args
from calls
group by all
order by database, category;
