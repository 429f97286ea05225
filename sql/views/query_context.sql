-- Each question with the call it asks for and the observation it was written from: the join
-- every stage after synthesis starts from (judge, quality, review, publish, drift).
-- `kind` is 'single' for a question about one candidate call; for a question about a call set
-- (parallel | multi_step | no_tool, issue 18) the call columns are null and the calls are in
-- item_steps, in order; `observation` is then the set's combined observation (a JSON array).
--
-- query_context_of(picked) is the same join for the rows of `picked`, the name of a table or
-- view with the columns of queries (a chunk of them): DuckDB then builds its hash tables from
-- the chunk and streams calls and observations past them, where a filter on the view builds
-- them from every call and observation of the store (at 100k calls, some 200 MB a chunk).
-- `observed` names the observations to join (a chunk's: store.registered): streamed past the
-- chunk's hash table, every observation's text is read, and at 1M calls that was 2 of a quality
-- chunk's 3.5 to 4 s; the chunk's own observations first, 1.9 to 2.2 s.
create or replace macro query_context_of(picked, observed := 'observations') as table
select q.query_id, q.call_id, q.observation_id, q.text, q.style, q.created_at, q.generator, q.model,
       q.prompt_version, q.parent_query_id,
       c.function, c.arguments, c.database, c.tool_group, c.category, c.entity_id,
       o.response_id, o.text as observation,
       coalesce(s.kind, 'single') as kind
from query_table(picked) q
left join candidate_calls c on q.call_id = c.call_id
left join call_sets s on q.call_id = s.set_id
join query_table(observed) o on q.observation_id = o.observation_id
where c.call_id is not null or s.set_id is not null;

create or replace view query_context as
select * from query_context_of('queries');
