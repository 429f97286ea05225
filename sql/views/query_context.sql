-- Each question with the call it asks for and the observation it was written from: the join
-- every stage after synthesis starts from (judge, quality, review, publish, drift).
create or replace view query_context as
select q.query_id, q.call_id, q.observation_id, q.text, q.style, q.created_at, q.generator, q.model,
       q.prompt_version, q.parent_query_id,
       c.function, c.arguments, c.database, c.tool_group, c.category, c.entity_id,
       o.response_id, o.text as observation
from queries q
join candidate_calls c on q.call_id = c.call_id
join observations o on q.observation_id = o.observation_id;
