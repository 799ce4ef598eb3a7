"""Notification channels: ``sms`` (provider adapters: generic webhook gateway, 阿里云, 腾讯云),
``webhook`` and ``console``. Each exposes ``async send(OutgoingMessage) -> SendResult`` and raises
:class:`alerting.errors.ProviderError` with ``retryable`` set."""
