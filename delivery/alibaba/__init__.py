"""Alibaba Cloud SMS (Dysmsapi 2017-05-25) compatible endpoint: the official SDKs work against us
by changing the endpoint (docs/alibaba.md). A thin translation into the same services as our own
API: signing.py (authentication), actions.py (the actions), errors.py (the code table),
push.py (SmsReport / SmsUp callback bodies), views.py (dispatch at `/`)."""
