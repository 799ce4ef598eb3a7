"""The out-of-band watchdog (``hazmon watchdog``, issue 20 item 2): its own process with the
fewest moving parts — no Kafka, no alerting process — that pages the centre's duty operator
(值班员) over SMS and a voice call when alerting is down or cannot send, when the database is
unreachable or refuses writes, and when the canary loop is broken while alerting has not said
so. Alerting in turn raises an alarm when the watchdog's heartbeat stops (alerting/selfwatch.py).

Not named ``watchdog``: that is a common PyPI distribution, which would overwrite (or shadow)
this package in a shared site-packages. It imports only the spine (``hazmon``) and alerting's
channels (``alerting.notify`` with the errors and templates they use): a contract in
pyproject.toml.
"""
