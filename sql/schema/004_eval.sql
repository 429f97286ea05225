-- Evaluation: a model (or a baseline) scored on a published version's test split. Every
-- prediction is kept with the model's raw output and its scores, so runs compare in SQL.

create table if not exists eval_runs (
    run_id        varchar primary key,       -- eval-<timestamp>-<random>
    label         varchar not null,          -- what the report calls it (default: the model)
    kind          varchar not null,          -- model | baseline
    model         varchar not null,          -- the model name sent, or the baseline's name
    base_url      varchar,                   -- the OpenAI-compatible endpoint (null for a baseline)
    version_id    varchar not null,          -- the published version scored
    split         varchar not null,          -- test (or validation)
    tools_mode    varchar not null,          -- export (gold + distractors, as published) | catalog (every tool)
    prompt_version varchar,                  -- hash of the system prompt and tools mode
    embedder      varchar not null,          -- the sentence-embedding model behind response similarity
    transport     varchar not null,          -- how unknown predicted calls were executed: live | record | replay
    settings      json not null,             -- every setting of the run (temperature, seed, CI level, ...)
    settings_hash varchar not null,          -- equal settings on equal data give equal scores
    code_version  varchar not null,
    items         integer,
    status        varchar not null,          -- running | completed | failed
    summary       json,                      -- overall scores with confidence intervals
    error         varchar,
    started_at    timestamp not null,
    finished_at   timestamp
);

create table if not exists eval_predictions (
    run_id        varchar not null,
    item_id       varchar not null,          -- dataset_items.item_id of the scored item
    call_id       varchar not null,
    database      varchar not null,
    tool          varchar not null,
    function      varchar not null,          -- the gold function
    category      varchar,
    user_query    varchar not null,
    gold_call     json not null,             -- {"name", "arguments"} as published
    status        varchar not null,          -- call | no_call | malformed | request_failed
    pred_name     varchar,
    pred_arguments varchar,                  -- the arguments exactly as the model wrote them
    pred_canonical json,                     -- the predicted call under the argument rule
    n_calls       integer not null,          -- tool calls in the reply (the first one is scored)
    raw_output    varchar,                   -- the model's whole reply message (JSON), or the baseline's trace
    error         varchar,                   -- why the request or the parse failed
    exact_match   boolean not null,
    name_match    boolean not null,
    arg_correct   integer not null,          -- argument pairs right (name right too)
    arg_predicted integer not null,
    arg_gold      integer not null,
    arg_precision double,                    -- null when nothing was predicted
    arg_recall    double,                    -- null when the gold call has no arguments
    schema_valid  boolean not null,
    schema_error  varchar,
    api_outcome   varchar,                   -- ok | ok_empty | api_error | http_error | ... | invalid_call | no_call
    api_success   boolean,                   -- null: undecided (e.g. replay_miss, timeout)
    api_source    varchar,                   -- stored (api_responses) | cache (eval_responses) | executed | null
    pred_observation varchar,
    similarity    double,                    -- cosine(pred observation, gold observation), floored at 0
    prompt_hash   varchar,                   -- llm_calls.prompt_hash of the request
    retrieved_item_id varchar,               -- the retrieval baseline's nearest training item
    created_at    timestamp default current_timestamp,
    primary key (run_id, item_id)
);

-- Aggregates with confidence intervals, per run, overall and per database, tool, function, category.
create table if not exists eval_scores (
    run_id        varchar not null,
    level         varchar not null,          -- overall | database | tool | function | category
    key           varchar not null,          -- the database/tool/... name ('all' for overall)
    metric        varchar not null,          -- exact_match | name_accuracy | arg_precision | ...
    n             integer not null,          -- items (or argument pairs) behind the value
    value         double,
    ci_low        double,
    ci_high       double,
    method        varchar not null,          -- wilson | bootstrap
    primary key (run_id, level, key, metric)
);

-- Responses to predicted calls that no stored response answered: the cache of API success.
create table if not exists eval_responses (
    fingerprint   varchar primary key,       -- hash of method, url, params, body (no secrets)
    function      varchar not null,
    arguments     json not null,
    url           varchar not null,
    transport     varchar not null,
    status_code   integer,
    outcome       varchar not null,          -- a final outcome (execute.FINAL_OUTCOMES)
    error         varchar,
    content_type  varchar,
    body          blob,                      -- gzip-compressed raw body
    fetched_at    timestamp not null,
    run_id        varchar
);
