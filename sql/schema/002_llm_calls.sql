-- Every LLM request: its accounting, and the cache that answers an identical prompt again.
-- The API key is never stored; `request` holds the model, messages and sampling settings only.
create table if not exists llm_calls (
    prompt_hash       varchar primary key,   -- hash(base_url, model, messages, temperature, seed, format)
    purpose           varchar not null,      -- generate | judge | repair
    model             varchar not null,
    base_url          varchar not null,
    prompt_version    varchar not null,
    request           json not null,
    response_text     varchar,
    status            varchar not null,      -- ok | http_error | timeout | unparseable
    error             varchar,
    prompt_tokens     integer,
    completion_tokens integer,
    cost_usd          double,
    latency_ms        double,
    subject_id        varchar,               -- the call_id or query_id it was about
    run_id            varchar,
    created_at        timestamp default current_timestamp
);

-- Model answers that could not be turned into queries or judgments, with the raw text.
create table if not exists generation_failures (
    failure_id    varchar primary key,       -- hash(prompt_hash, stage)
    stage         varchar not null,          -- synthesize | judge
    subject_id    varchar not null,
    prompt_hash   varchar not null,
    reason        varchar not null,
    raw_text      varchar,
    run_id        varchar,
    created_at    timestamp default current_timestamp
);
