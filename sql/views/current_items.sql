-- Each item with its current version. An item is a question that is neither a reviewer's edit
-- nor a drift replacement; a drift check that finds its call answering differently gives it a
-- new version (query_replacements), and the newest one is what review and publish look at.
-- `item_id` is the item's first version: the id it is published under.
create or replace view current_items as
select
    coalesce(r.item_id, q.query_id) as item_id,
    q.*
from queries as q
left join query_replacements as r on q.query_id = r.replacement_query_id
where
    q.parent_query_id is null
    and q.query_id not in (select query_id from query_replacements);
