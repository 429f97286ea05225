-- Drift watch: the calls of a published version are executed again and what the APIs answer
-- now is compared with what was published. A changed item is held out of publishing and a
-- new version of it (same question, the new observation) goes back to review.

create table if not exists drift_checks (
    check_id      varchar primary key,       -- the run id of the drift job
    version_id    varchar not null,          -- the published version whose calls were re-executed
    started_at    timestamp not null,
    finished_at   timestamp,
    transport     varchar not null,          -- live | record | replay
    calls_in_version integer not null,
    calls_checked integer not null,
    unchanged     integer not null default 0,
    body_changed  integer not null default 0, -- raw body differs, the published observation does not
    changed       integer not null default 0, -- the observation differs: items held, sent to review
    gone          integer not null default 0, -- a definite non-answer now (404, empty, API error)
    failed        integer not null default 0  -- no definite answer (timeout, 5xx): checked again next time
);

create table if not exists drift_results (
    drift_id      varchar primary key,       -- hash(check_id, call_id)
    check_id      varchar not null,
    version_id    varchar not null,
    call_id       varchar not null,
    function      varchar not null,
    status        varchar not null,          -- unchanged | body_changed | changed | gone | failed
    old_response_id varchar,                 -- the response behind the published observation
    new_response_id varchar,
    old_body_sha256 varchar,
    new_body_sha256 varchar,
    new_outcome   varchar,
    new_observation_id varchar,
    items         integer not null,          -- published items about this call
    detail        varchar,                   -- the outcome's error, or where the observation changed
    checked_at    timestamp not null
);
create index if not exists drift_results_call on drift_results(call_id);

-- Published items that drift took out of publishing: publish skips every query_id here. The
-- replacement (when the call still answers) is a new query row with the same question and the
-- new observation; it is reviewed like any other item, and its accept is what publishes it.
create table if not exists drift_holds (
    hold_id       varchar primary key,       -- hash(drift_id, query_id)
    query_id      varchar not null,          -- the published item (dataset_items.item_id)
    drift_id      varchar not null,
    check_id      varchar not null,
    version_id    varchar not null,
    call_id       varchar not null,
    reason        varchar not null,          -- changed | gone
    replacement_query_id varchar,
    created_at    timestamp not null
);
create index if not exists drift_holds_query on drift_holds(query_id);
