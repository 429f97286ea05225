-- Where each stored response came from, one label per response (the one place this is decided):
--   live          fetched from the API by this pipeline (transport live, or record, which also
--                 saves it into the snapshot);
--   recorded      replayed from a snapshot entry that `record` mode saved from the live API;
--   fixture       replayed from a real response another project kept as a test fixture (the
--                 snapshot's provenance note names the repository and commit);
--   illustrative  replayed from a hand-written body in the API's format: an example of shape,
--                 not data;
--   unknown       replayed, but stored before responses kept their snapshot origin (migration 008).
create or replace view response_provenance as
select
    response_id,
    call_id,
    transport,
    snapshot_origin,
    snapshot_provenance,
    case
        when transport in ('live', 'record') then 'live'
        when snapshot_origin = 'illustrative' then 'illustrative'
        when snapshot_origin = 'real' and snapshot_provenance like 'recorded live%' then 'recorded'
        when snapshot_origin = 'real' then 'fixture'
        else 'unknown'
    end as response_provenance
from api_responses;
