"""Flask's signed-cookie session, with its signer made once per set of keys.

Flask builds the session's serializer (its key list, its signer, a trial `dumps`) in every
request, whether or not the request has a session cookie: a tenth of what an API request
cost before it reached its view. A serializer holds no state between uses, so one per secret
key (and fallback keys) serves every request; a changed key makes a new one.

Most requests (a patient's, the API's) carry no cookie and leave the session empty: they get
an empty session without the cookie header parsed, and after the answer only the `Vary:
Cookie` a session looked at calls for, without the cookie's seven settings read for a cookie
that is not written. Together about 2% of an availability request.
"""

from __future__ import annotations

from functools import lru_cache

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import URLSafeTimedSerializer


class CookieSession(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if "HTTP_COOKIE" not in request.environ and app.secret_key:
            return self.session_class()  # what Flask opens for a request without the cookie
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not session and not session.modified:  # empty, as it came: no cookie to write
            if session.accessed:
                if "Vary" in response.headers:
                    response.vary.add("Cookie")
                else:
                    response.headers["Vary"] = "Cookie"
            return
        super().save_session(app, session, response)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        # itsdangerous signs with the last key and accepts any of them.
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        return self._serializer_for(keys)

    @lru_cache(maxsize=8)  # noqa: B019  (one interface per app, a handful of key sets)
    def _serializer_for(self, keys: tuple[str | bytes, ...]) -> URLSafeTimedSerializer:
        # As Flask makes it (flask.sessions), from a list with the current key last.
        return URLSafeTimedSerializer(
            list(keys),
            salt=self.salt,
            serializer=self.serializer,
            signer_kwargs={
                "key_derivation": self.key_derivation,
                "digest_method": self.digest_method,
            },
        )
