"""Keeping a worker's one-time token and secret variables out of the SDK's debug logs.

botocore logs every request it sends, body included, at DEBUG ("Making request for
OperationModel(name=Invoke) with params: ..."), and the token travels in an Invoke's body. While
a call carries a secret, a filter on the SDK's loggers replaces it with ``***`` in any record, in every
encoding a library may log it in (:func:`hodei.redaction.secret_forms`).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from hodei.redaction import mask_secrets, secret_forms

# The loggers that see a request or a response in full; a filter only applies to its own logger's records.
SDK_LOGGERS = (
    "botocore.endpoint", "botocore.parsers", "botocore.hooks", "botocore.awsrequest", "botocore.httpsession",
    "botocore.retryhandler", "botocore.retries.standard", "urllib3.connectionpool",
)


class _SecretsFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: Counter[str] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:  # the common case, without the lock
            return True
        with self._lock:
            secrets = list(self._secrets)
        message = record.getMessage()
        # botocore logs a request's params as a repr holding the JSON body: a secret with a quote or a
        # non-ASCII character appears escaped there, never as itself.
        masked = mask_secrets(message, {form for secret in secrets for form in secret_forms(secret)})
        if masked != message:
            record.msg, record.args = masked, None
        return True

    @contextmanager
    def hold(self, secret: str) -> Iterator[None]:
        if not secret:  # nothing to hide, and "" would match everywhere
            yield
            return
        with self._lock:
            self._secrets[secret] += 1
        try:
            yield
        finally:
            with self._lock:
                self._secrets[secret] -= 1
                if self._secrets[secret] <= 0:
                    del self._secrets[secret]


_FILTER = _SecretsFilter()
_installed = False
_install_lock = threading.Lock()


@contextmanager
def hidden(secret: str) -> Iterator[None]:
    """While inside, ``secret`` is masked in every record of the SDK's loggers."""
    global _installed
    with _install_lock:
        if not _installed:
            for name in SDK_LOGGERS:
                logging.getLogger(name).addFilter(_FILTER)
            _installed = True
    with _FILTER.hold(secret):
        yield
