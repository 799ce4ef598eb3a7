"""Alerting's tables: every read and write the service, the flush, the closed loop
(:mod:`alerting.lifecycle`) and the hazards ledger (:mod:`alerting.ledger`) do.

One module per table family, as Alertmanager keeps its state apart from its decisions:

* :mod:`~alerting.store.alerts` — ``alerts`` and ``alert_transitions`` (the audit trail);
* :mod:`~alerting.store.groups` — ``alert_groups`` (aggregation groups and their nflog);
* :mod:`~alerting.store.escalations` — the escalation timers, ``notices`` and ``key_periods``
  (its sync from routes.yaml; the console's edits: :mod:`~alerting.store.key_periods`);
* :mod:`~alerting.store.ledger` — ``hazards`` and ``hazard_transitions``;
* :mod:`~alerting.store.silences` — ``silences`` and ``silence_audit``;
* :mod:`~alerting.store.broadcasts` — ``broadcasts`` (安全公益短信) and their audience;
* :mod:`~alerting.store.outbox` — ``notifications`` (the outbox) and ``notification_attempts``;
* :mod:`~alerting.store.acks` — ``alert_ack_grants``, ``inbound_limits``, ``inbound_audit``,
  ``sms_replies`` (回复码, link tokens and their limits).

The decisions stay pure in :mod:`alerting.group`, :mod:`alerting.escalation`,
:mod:`alerting.inhibit` and :mod:`alerting.silence`; nothing here reads the wall clock.
"""

from alerting.store.acks import *  # noqa: F403
from alerting.store.acks import __all__ as _acks
from alerting.store.alerts import *  # noqa: F403
from alerting.store.alerts import __all__ as _alerts
from alerting.store.broadcasts import *  # noqa: F403
from alerting.store.broadcasts import __all__ as _broadcasts
from alerting.store.escalations import *  # noqa: F403
from alerting.store.escalations import __all__ as _escalations
from alerting.store.groups import *  # noqa: F403
from alerting.store.groups import __all__ as _groups
from alerting.store.ledger import *  # noqa: F403
from alerting.store.ledger import __all__ as _ledger
from alerting.store.outbox import *  # noqa: F403
from alerting.store.outbox import __all__ as _outbox
from alerting.store.silences import *  # noqa: F403
from alerting.store.silences import __all__ as _silences

__all__ = [*_alerts, *_groups, *_escalations, *_ledger, *_silences, *_broadcasts, *_outbox, *_acks]
