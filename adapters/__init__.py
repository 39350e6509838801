"""Transports that know protocols, not departments.

Every adapter raises the errors below; callers act on ``err.kind``
(``"transient"``: retry later; ``"permanent"``: fails again as is).
"""

from adapters.base import (
    AdapterError,
    AuthError,
    BusinessError,
    PermanentError,
    SignatureError,
    StaleRequestError,
    TransientError,
    classify_http_status,
)

__all__ = [
    "AdapterError",
    "AuthError",
    "BusinessError",
    "PermanentError",
    "SignatureError",
    "StaleRequestError",
    "TransientError",
    "classify_http_status",
]
