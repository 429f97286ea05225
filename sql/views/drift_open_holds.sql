-- Published items that a drift check took out of publishing and that are still out: a changed
-- item until a reviewer annotates its current version (the replacement bound to the new
-- observation) after the change, and the review decides from there; a gone item until a later
-- check finds its call answering as published again.
create or replace view drift_open_holds as
select h.*
from drift_holds as h
left join current_items as c on h.query_id = c.item_id
where
    (h.reason = 'changed' and not exists (
        select 1 from annotations as a
        where
            a.query_id = coalesce(c.query_id, h.query_id)
            and coalesce(a.updated_at, a.created_at, a.pulled_at) > h.created_at
    ))
    or (h.reason = 'gone' and not exists (
        select 1 from drift_results as r
        where
            r.call_id = h.call_id and r.checked_at > h.created_at
            and r.status in ('unchanged', 'body_changed')
    ));
