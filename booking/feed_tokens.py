"""Therapists' secret calendar feed tokens.

A token is an HMAC of the therapist's id and rotation counter under the secret key: 160 bits,
shown again whenever asked (nothing to store), useless to someone holding only a copy of the
database, and revoked by raising the counter (`flask feeds rotate`, or the back office).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from flask import current_app
from sqlalchemy import select

from booking.extensions import db
from booking.models import Therapist


def feed_token_for(therapist: Therapist) -> str:
    return _token(f"therapist:{therapist.id}:{therapist.feed_rotation}")


def feed_url_for(therapist: Therapist) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/feeds/{feed_token_for(therapist)}.ics"


def therapist_for_feed_token(token: str) -> Therapist | None:
    """The therapist whose current token this is, compared in constant time; else None."""
    found = None
    for therapist in db.session.scalars(select(Therapist).where(Therapist.active.is_(True))):
        # Every candidate is compared, so the time taken says nothing about the token.
        if hmac.compare_digest(feed_token_for(therapist).encode(), token.encode()):
            found = therapist
    return found


def rotate_feed_token(therapist: Therapist) -> str:
    """Revoke the therapist's feed URL and return the new token. The caller commits."""
    therapist.feed_rotation += 1
    return feed_token_for(therapist)


def _token(subject: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"calendar-feed:{subject}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:20]).decode().rstrip("=").lower()
