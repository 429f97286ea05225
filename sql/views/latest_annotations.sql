-- The current version of each Label Studio annotation: a pull stores a new row whenever the
-- server's copy changed, and only the latest one counts (the one definition of "latest").
-- latest_annotations_of ranks the annotation rows it is given (a chunk's: store.registered), so
-- that a chunk of questions does not rank every annotation of the store.
create or replace macro latest_annotations_of(picked) as table
select *
from query_table(picked)
qualify row_number() over (
    partition by ls_annotation_id order by updated_at desc, pulled_at desc
) = 1;

create or replace view latest_annotations as
select * from latest_annotations_of('annotations');
