-- Published items that a drift check took out of publishing and that are still out: a changed
-- item until a reviewer annotates it again after the change (the review decides from there), a
-- gone item until a later check finds its call answering as published again.
create or replace view drift_open_holds as
select h.*
from drift_holds h
where (h.reason = 'changed' and not exists (
          select 1 from annotations a
          where a.query_id = h.query_id and coalesce(a.updated_at, a.created_at, a.pulled_at) > h.created_at))
   or (h.reason = 'gone' and not exists (
          select 1 from drift_results r
          where r.call_id = h.call_id and r.checked_at > h.created_at and r.status in ('unchanged', 'body_changed')));
