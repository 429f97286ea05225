-- Questions replaced by a newer version: a reviewer's edit (the edit's parent), or a drift
-- replacement (same question, new observation). Quality checks them no more and compares no
-- other question with them (they take no part in duplicate checks).
create or replace view qc_replaced_queries as
select parent_query_id as query_id from queries
where parent_query_id is not null
union
select query_id from query_replacements;
