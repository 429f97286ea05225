-- Every call a question asks for, in order (issue 18): one row for a single-call question, one
-- per step for a parallel or multi_step question (with the step's own observation, the one the
-- set's combined observation was built from), none for a no_tool question.
create or replace view item_steps as
select q.query_id, 'single' as kind, 0 as position, c.call_id, cast(null as integer) as depends_on,
       cast(null as json) as fed_by, c.function, c.arguments, c.database, c.tool_group, c.category,
       c.entity_id, o.observation_id, o.response_id, o.text as observation
from queries q
join candidate_calls c on q.call_id = c.call_id
join observations o on q.observation_id = o.observation_id
union all
select q.query_id, s.kind, st.position, c.call_id, st.depends_on, st.fed_by, c.function, c.arguments,
       c.database, c.tool_group, c.category, c.entity_id, so.observation_id, so.response_id,
       so.text as observation
from queries q
join call_sets s on q.call_id = s.set_id
join call_set_steps st on s.set_id = st.set_id
join candidate_calls c on st.call_id = c.call_id
join call_set_observations cso on q.observation_id = cso.observation_id and st.position = cso.position
join observations so on cso.step_observation_id = so.observation_id;
