"""The Content-Security-Policy of every page (django-csp; the policy is in settings).

What the policy cannot say by itself is added per request: the signaling socket of the host the
page came from (``wss://host`` over HTTPS, ``ws://host`` otherwise). CSP Level 3 lets ``'self'``
cover it, but not every browser a customer may have does.
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only=report_only)
        try:
            host = request.get_host()
        except DisallowedHost:  # answered 400 already; 'self' is all it gets
            return parts
        socket = f"{'wss' if request.is_secure() else 'ws'}://{host}"
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", []), socket]
        parts.update = update
        return parts
