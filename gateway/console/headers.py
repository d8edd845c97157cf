"""Security headers for console pages. Case pages hold a reporter's words: nothing may be
cached (phones are shared), framed, or leak through a Referer; the policy allows only our own
stylesheet and no script at all, because the console needs none."""
from __future__ import annotations

from flask import Response

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HSTS_SECONDS = 365 * 24 * 3600


def secure(response: Response, production: bool) -> Response:
    h = response.headers
    h["Content-Security-Policy"] = CSP
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "no-referrer"
    h["Cache-Control"] = "no-store"
    h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    if production:
        h["Strict-Transport-Security"] = f"max-age={HSTS_SECONDS}"
    return response
