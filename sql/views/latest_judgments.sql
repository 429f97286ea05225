-- The current judgment of each query: the newest one (ties broken by id, so it is stable).
-- latest_judgments_of(picked) is the same for the judgments in `picked`, the name of a table or
-- view with the columns of judgments (those of a chunk of questions): ranked as they are, where
-- a filter on the view ranks every judgment of the store first.
create or replace macro latest_judgments_of(picked) as table
select *
from query_table(picked)
qualify row_number() over (
    partition by query_id order by created_at desc, judgment_id asc
) = 1;

create or replace view latest_judgments as
select * from latest_judgments_of('judgments');
