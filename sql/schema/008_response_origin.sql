-- Where a stored response came from, as the snapshot that answered it says (issue 20): a replayed
-- response keeps its snapshot entry's origin (real | illustrative) and provenance note (the
-- repository and commit of a real fixture, "recorded live <time>" for a response `record` mode
-- saved, what an illustrative body is based on). Both are null for a response fetched over the
-- network (transport live or record) and for rows stored before this migration. The
-- response_provenance view turns them into one label per response.
alter table api_responses add column snapshot_origin varchar;
alter table api_responses add column snapshot_provenance varchar;
