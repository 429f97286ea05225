-- Drift replacements, append-only. When a drift check finds a call answering differently, each
-- of its questions (reviewers' edits aside) gets a new `queries` row: the same question bound to
-- the new observation, judged, checked and reviewed like any other. The old row, its judgments
-- and its checks stay as they were; this table says it is superseded and by what.
create table if not exists query_replacements (
    query_id             varchar primary key,  -- the superseded question
    replacement_query_id varchar not null,     -- its new version (same text, the new observation)
    item_id              varchar not null,     -- the item's first version: the id it is published under
    drift_id             varchar not null,     -- the drift result (check and call) that replaced it
    run_id               varchar,
    created_at           timestamp not null
);
