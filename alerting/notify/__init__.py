"""Notification channels: ``sms`` (provider adapters: generic webhook gateway, 阿里云, 腾讯云),
``webhook`` and ``console``. Each is a :class:`alerting.notify.base.Notifier` (``async
send(OutgoingMessage) -> SendResult``, the batching and in-flight capabilities the outbox uses)
and raises :class:`alerting.errors.ProviderError` with ``retryable`` set."""
