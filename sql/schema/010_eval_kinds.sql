-- Evaluation per item kind (issue 18): what a prediction is scored as (single, parallel,
-- multi_step, no_tool) and the call-level counts behind its partial credit. A single item keeps
-- its scores; the new columns say the same thing at the level of calls.

alter table eval_predictions add column kind varchar default 'single';  -- the item's kind
alter table eval_predictions add column gold_calls json;                 -- every gold call {"name", "arguments"}, in order
alter table eval_predictions add column pred_calls json;                 -- every predicted call scored, in order
alter table eval_predictions add column call_gold integer;               -- gold calls (0 for no_tool)
alter table eval_predictions add column call_predicted integer;          -- predicted calls scored
alter table eval_predictions add column call_matched integer;            -- predicted calls equal to a gold call (parallel: as a set; multi_step: the correct prefix)
alter table eval_predictions add column call_f1 double;                  -- F1 of call_matched over predicted and gold (1 when both are empty)
alter table eval_predictions add column turns integer;                   -- model turns of a multi_step conversation
