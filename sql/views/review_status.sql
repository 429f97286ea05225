-- Review state per pushed query for exploration (`biocurate sql`): the vote counts, a
-- `conflicting` flag when annotators disagree, both rules' states (see review_resolution), and
-- `state` under the default rule, any_reject. `biocurate review status` applies the configured rule.
create or replace view review_status as
select
    *,
    any_reject_state as state
from review_resolution;
