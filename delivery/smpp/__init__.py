"""SMPP 3.4 client over smpplib (R-DLV-3, R-DLV-4); docs/smpp.md describes the design.

- session.py: SmppSession, one bind (submit, window, keep-alive, unbind, query_sm, deliver_sm)
- bind.py: opening / closing a bind over smpplib
- window.py: the send window that follows the carrier, throttling back-off, part order on resend
- pacing.py: the TPS token bucket and the reconnect back-off
- results.py: statuses, errors, SubmitResult / InboundPdu / QueryResult, failure reasons
- codec.py: PDU text (data_coding, UDH, a text into submit_sm parts, MO reassembly, deliver_sm)
- receipts.py: delivery receipts and SMSC message ids

Callers import from these modules (nothing is re-exported here).
"""
