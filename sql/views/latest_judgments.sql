-- The current judgment of each query: the newest one (ties broken by id, so it is stable).
create or replace view latest_judgments as
select *
from judgments
qualify row_number() over (
    partition by query_id order by created_at desc, judgment_id asc
) = 1;
