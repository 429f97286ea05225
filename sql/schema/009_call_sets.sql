-- Items beyond one call (issue 18). A call set is what a `parallel`, `multi_step` or `no_tool`
-- question asks for; a `single` question asks for one candidate call, as before.
--   * Its steps are ordinary candidate_calls rows, each with its own responses and observations.
--   * A multi_step set knows only its first step when sampled; each later step is added once the
--     step it depends on has a stored observation, with the values taken from it (fed_by).
--   * When every step has a definite answer, the set gets a combined observation: an observations
--     row whose call_id is the set_id, builder 'call_set', text the JSON array of the steps'
--     observation texts in order ('[]' for no_tool), response_id a hash of the steps' response
--     ids. call_set_observations says which step observation each element is.
--   * A question about a set is a queries row like any other, with call_id = set_id and
--     observation_id = the combined observation. The view item_steps lists every item's calls.
create table if not exists call_sets (
    set_id      varchar primary key,  -- hash(kind, template, first step's call_id, or the no-tool topic)
    kind        varchar not null,     -- parallel | multi_step | no_tool
    template    varchar not null,     -- the declaration in catalog/item_kinds.yaml that made it
    spec        json not null,        -- what was sampled (entities, declared links; for no_tool the topic and why no offered tool answers it)
    run_id      varchar,
    created_at  timestamp default current_timestamp
);

create table if not exists call_set_steps (
    set_id      varchar not null,
    position    integer not null,     -- 0-based order in which the calls are made
    call_id     varchar not null,     -- a candidate_calls row
    depends_on  integer,              -- multi_step: the step whose observation fed this one
    fed_by      json,                 -- multi_step: {parameter: {"from": path in that observation, "value": value}}
    run_id      varchar,
    created_at  timestamp default current_timestamp,
    primary key (set_id, position)
);

create table if not exists call_set_observations (
    observation_id      varchar not null,  -- the set's combined observation
    position            integer not null,
    step_observation_id varchar not null,  -- the step's own observation (observations row of its call)
    primary key (observation_id, position)
);
