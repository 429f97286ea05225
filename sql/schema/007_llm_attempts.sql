-- llm_calls keeps every attempt (issue 17): a failed attempt no longer holds the prompt's key, so
-- the answer that comes when the endpoint is back is accounted and cached too. prompt_hash stays
-- the cache key (only rows with status 'ok' answer from the cache); tries counts the HTTP requests
-- the attempt made, retries included. Rows from before keep their prompt_hash as attempt_id.
-- Runs gain the status 'degraded' (a stage's service was unreachable) next to running, completed,
-- failed (an error, or a stage none of whose requests was answered) and interrupted.
create table llm_attempts (
    attempt_id        varchar primary key,   -- hash(prompt_hash, run_id, the attempt's number in its run)
    prompt_hash       varchar not null,      -- hash(base_url, model, messages, temperature, seed, format)
    purpose           varchar not null,      -- generate | judge | repair | eval
    model             varchar not null,
    base_url          varchar not null,
    prompt_version    varchar not null,
    request           json not null,
    response_text     varchar,
    status            varchar not null,      -- ok | http_error | timeout
    error             varchar,
    prompt_tokens     integer,
    completion_tokens integer,
    cost_usd          double,
    latency_ms        double,
    subject_id        varchar,               -- the call_id or query_id it was about
    run_id            varchar,
    created_at        timestamp default current_timestamp,
    tries             integer                -- HTTP requests made (1 + retries); null before 007
);

insert into llm_attempts (
    attempt_id, prompt_hash, purpose, model, base_url, prompt_version, request, response_text, status,
    error, prompt_tokens, completion_tokens, cost_usd, latency_ms, subject_id, run_id, created_at
)
select
    prompt_hash as attempt_id, prompt_hash, purpose, model, base_url, prompt_version, request, response_text, status,
    error, prompt_tokens, completion_tokens, cost_usd, latency_ms, subject_id, run_id, created_at
from llm_calls;

drop table llm_calls;

alter table llm_attempts rename to llm_calls;

create index llm_calls_prompt on llm_calls (prompt_hash);
