-- BioTool imports (`biocurate import biotool`): every record read from a BioTool file, the
-- observation BioTool published for each call (its claim), and how our own answer to the call
-- compares with that claim. An imported record becomes a candidate call (template
-- 'biotool-import'), a question (queries.generator 'biotool-import') and a claim; the question's
-- first version is bound to the claim (queries.observation_id = biotool_claims.claim_id), and
-- once the call answers it gets a new version bound to our observation (query_replacements,
-- whose drift_id is then the biotool_checks row that bound it).

create table if not exists biotool_records (
    record_id     varchar primary key,       -- hash(file sha256, record number)
    file_path     varchar not null,          -- the path the file was imported from
    file_name     varchar not null,
    file_sha256   varchar not null,
    record_number integer,                   -- 1-based position in the file (line for JSONL); null: the whole file
    format        varchar,                   -- biotool (BioTool.json records) | sharegpt (BioTool_train/test.json)
    split         varchar,                   -- train | validation | test from the file name; null for BioTool.json
    record_sha256 varchar,                   -- hash of the record's canonical JSON
    status        varchar not null,          -- imported | malformed
    problem       varchar,                   -- what is wrong with a malformed record
    raw           varchar,                   -- a malformed record as it was read (nothing is lost)
    function      varchar,
    arguments     json,                      -- as BioTool wrote them
    user_query    varchar,
    database      varchar,                   -- as BioTool wrote them (ncbi, ensembl, uniprot)
    tool          varchar,
    call_id       varchar,
    query_id      varchar,                   -- the imported question (the item's first version)
    claim_id      varchar,
    run_id        varchar,
    imported_at   timestamp not null
);
create index if not exists biotool_records_call on biotool_records(call_id);

create table if not exists biotool_claims (
    claim_id      varchar primary key,       -- hash(call_id, text)
    call_id       varchar not null,
    text          varchar,                   -- the observation as BioTool stored it; null: the file had none
    chars         integer,
    record_id     varchar not null,          -- the first record that claimed it
    run_id        varchar,
    created_at    timestamp default current_timestamp
);

create table if not exists biotool_checks (
    check_id      varchar primary key,       -- hash(claim_id, response_id)
    claim_id      varchar not null,
    call_id       varchar not null,
    function      varchar not null,
    response_id   varchar not null,          -- our latest answer to the call
    status        varchar,                   -- unchanged | body_changed | changed | gone | failed (the drift
                                             -- watch's); null: it answers, BioTool published nothing to compare
    basis         varchar not null,          -- same body | facts | nothing checkable | no claim | no answer
    facts_checked integer not null,          -- claimed facts that the answer can confirm or contradict
    facts_missing integer not null,          -- of those, the ones not in the answer now
    detail        varchar,                   -- which facts are missing, or the outcome's error
    new_outcome   varchar not null,
    new_observation_id varchar,              -- our observation of the answer (ok answers)
    run_id        varchar,
    checked_at    timestamp not null
);
create index if not exists biotool_checks_call on biotool_checks(call_id);
