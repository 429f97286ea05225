-- Core tables: one per pipeline stage. Every key is a content hash, so inserting the same
-- content twice is a no-op (INSERT ... ON CONFLICT DO NOTHING). Every row names the run
-- that first produced it (run_id) and when.

create table if not exists runs (
    run_id        varchar primary key,
    flow          varchar not null,
    started_at    timestamp not null,
    finished_at   timestamp,
    status        varchar not null,          -- running | completed | failed
    config_hash   varchar not null,
    code_version  varchar not null,
    counts        json,                      -- per-stage rows in / new / reused / failed
    summary       json,                      -- the summary table printed at the end
    error         varchar
);

create table if not exists tools (
    function      varchar primary key,       -- published BioTool function name
    source        varchar not null,          -- ncbi | ensembl | uniprot
    tool_group    varchar not null,          -- sub-API, e.g. lookup, uniprotkb, esearch
    database      varchar not null,          -- NCBI | Ensembl | UniProt
    category      varchar not null,          -- topic category
    method        varchar not null,
    url_template  varchar not null,
    schema_json   json not null,             -- OpenAI function-calling schema
    spec_hash     varchar not null,
    run_id        varchar,
    created_at    timestamp default current_timestamp
);

create table if not exists entities (
    entity_id     varchar primary key,       -- hash(entity_type, fields)
    entity_type   varchar not null,
    label         varchar not null,          -- the identifier a person would use
    species       varchar,
    fields        json not null,
    source        varchar not null,          -- where the seed came from
    seed_file     varchar,
    seed_line     integer,
    found_by_call varchar,                   -- call_id that discovered it (expansion), else null
    run_id        varchar,
    created_at    timestamp default current_timestamp
);

create table if not exists candidate_calls (
    call_id       varchar primary key,       -- hash(function, canonical arguments)
    function      varchar not null,
    arguments     json not null,
    entity_id     varchar,
    template      varchar not null,          -- which sampling rule produced it
    database      varchar not null,
    tool_group    varchar not null,
    category      varchar not null,
    valid         boolean not null,
    invalid_reason varchar,
    run_id        varchar,
    created_at    timestamp default current_timestamp
);

create table if not exists api_responses (
    response_id   varchar primary key,       -- hash(request fingerprint, status, body sha256)
    call_id       varchar not null,
    fingerprint   varchar not null,          -- hash of method, url, params, body (no secrets)
    method        varchar not null,
    url           varchar not null,          -- request URL without secrets
    status_code   integer,
    outcome       varchar not null,          -- ok | ok_empty | api_error | http_error | timeout | invalid_body | invalid_call | replay_miss
    error         varchar,
    content_type  varchar,
    body          blob,                      -- zstd/gzip-compressed raw body
    body_sha256   varchar,
    latency_ms    double,
    attempts      integer,
    transport     varchar not null,          -- live | record | replay
    upstream_release varchar,                -- e.g. Ensembl release, UniProt release, from headers
    fetched_at    timestamp not null,
    run_id        varchar
);
create index if not exists api_responses_call on api_responses(call_id);
create index if not exists api_responses_fp on api_responses(fingerprint);

create table if not exists observations (
    observation_id varchar primary key,      -- hash(call_id, text)
    call_id       varchar not null,
    response_id   varchar not null,
    text          varchar not null,          -- compact, bounded summary of the response
    builder       varchar not null,
    chars         integer not null,
    run_id        varchar,
    created_at    timestamp default current_timestamp
);

create table if not exists queries (
    query_id      varchar primary key,       -- hash(call_id, text, generator, model, prompt_version)
    call_id       varchar not null,
    observation_id varchar not null,
    text          varchar not null,
    style         varchar not null,          -- broad | specific
    generator     varchar not null,          -- template | openai
    model         varchar not null,
    prompt_version varchar not null,
    temperature   double,
    seed          integer,
    parent_query_id varchar,                 -- set when a reviewer's edit made this version
    run_id        varchar,
    created_at    timestamp default current_timestamp
);

create table if not exists judgments (
    judgment_id   varchar primary key,       -- hash(query_id, judge, model, prompt_version)
    query_id      varchar not null,
    judge         varchar not null,          -- rules | openai
    model         varchar not null,
    prompt_version varchar not null,
    verdict       varchar not null,          -- accept | reject | unsure
    score         double not null,           -- 0..1
    reason        varchar not null,
    run_id        varchar,
    created_at    timestamp default current_timestamp
);

create table if not exists qc_results (
    qc_id         varchar primary key,       -- hash(item_id, suite, expectation, qc config hash)
    item_kind     varchar not null,          -- call | observation | query | judgment | dataset
    item_id       varchar not null,
    suite         varchar not null,
    expectation   varchar not null,
    passed        boolean not null,
    severity      varchar not null,          -- blocking | warning
    reason        varchar,
    qc_config_hash varchar not null,
    run_id        varchar,
    created_at    timestamp default current_timestamp
);
create index if not exists qc_results_item on qc_results(item_id);

create table if not exists review_tasks (
    query_id      varchar primary key,
    content_hash  varchar not null,          -- what was pushed; a change updates the task
    project_id    integer not null,
    task_id       integer not null,
    priority      double,
    pushed_at     timestamp not null,
    updated_at    timestamp not null,
    run_id        varchar
);

create table if not exists annotations (
    annotation_id varchar primary key,       -- hash(server annotation id, updated_at)
    ls_annotation_id integer not null,
    task_id       integer not null,
    query_id      varchar not null,
    annotator     varchar,
    verdict       varchar not null,          -- accept | reject | accept_with_edit
    reject_reason varchar,
    edited_query  varchar,
    edited_call   json,
    created_at    timestamp,
    updated_at    timestamp,
    pulled_at     timestamp not null,
    run_id        varchar
);

create table if not exists dataset_versions (
    version_id    varchar primary key,       -- e.g. v0001
    parent_id     varchar,
    content_hash  varchar not null,          -- hash of the sorted item ids and texts
    created_at    timestamp not null,
    code_version  varchar not null,
    config_hash   varchar not null,
    path          varchar not null,
    counts        json not null,
    run_id        varchar
);

create table if not exists dataset_items (
    version_id    varchar not null,
    item_id       varchar not null,          -- query_id of the exported item
    call_id       varchar not null,
    split         varchar not null,          -- train | validation | test
    group_key     varchar not null,
    user_query    varchar not null,
    function_calling json not null,
    observation   varchar not null,
    database      varchar not null,
    tool          varchar not null,
    primary key (version_id, item_id)
);
