-- Each item as the first version that held it published it: the split it keeps in every later
-- version (publish's split assignment and its split checks).
create or replace view first_published as
select *
from dataset_items
qualify row_number() over (
    partition by item_id order by length(version_id), version_id
) = 1;
