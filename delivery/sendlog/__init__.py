"""The send log's features (R-AUD-1..4), each in its own module:

- `export`: the send log across tenant schemas, its columns, streaming writers (CSV, XLSX, JSON);
- `trail`: the operation trail (R-AUD-3) as an export;
- `jobs`: export jobs (ExportJob): request, produce in the worker, download, describe;
- `retention`: the purge (R-AUD-1) and recipient erasure (ErasureRequest, R-AUD-4).

Import the module you need (`from delivery.sendlog.jobs import request_export`).
"""
