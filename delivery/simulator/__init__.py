"""The SMSC simulator: an SMPP 3.4 SMSC for tests, benchmarks and local development (R-DLV-3,
R-DLV-4). Not production code: no production module imports it (tests/delivery/
test_simulator_isolation.py checks); `manage.py smsc_simulator` (and `devstack`) start it.

- server.py: SmscSimulator, its options, lifecycle, runtime controls and records for assertions
- connection.py: one bind (bind limits, submit_sm faults, query_sm, hang, unbind, deliver_sm)
- records.py: accepted submits, deliver_sm records, the TPS bucket

docs/smpp.md ("The SMSC simulator") lists every switch.
"""
