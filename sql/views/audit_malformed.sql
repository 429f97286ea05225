-- BioTool records that could not be imported, by file and record number, with what is wrong and
-- the record as it was read (record_number null: the whole file).
create or replace view audit_malformed as
select file_name, file_path, record_number, format, split, problem, raw, imported_at
from biotool_records
where status = 'malformed';
