-- The current version of each Label Studio annotation: a pull stores a new row whenever the
-- server's copy changed, and only the latest one counts (the one definition of "latest").
create or replace view latest_annotations as
select *
from annotations
qualify row_number() over (
    partition by ls_annotation_id order by updated_at desc, pulled_at desc
) = 1;
