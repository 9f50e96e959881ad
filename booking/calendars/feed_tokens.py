"""Secret calendar feed tokens: one per therapist, and one for the front desk's clinic-wide feed.

A token is an HMAC of its owner and rotation counter under the secret key: 160 bits, shown
again whenever asked (nothing to store), useless to someone holding only a copy of the
database, and revoked by raising the counter (`flask feeds rotate`, or the back office).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from flask import current_app

from booking.clinic.reference import (
    ClinicNotConfigured,
    TherapistFacts,
    current_clinic,
    reference_data,
    therapist_row,
)
from booking.models import Clinic, Therapist


def feed_token_for(therapist: Therapist | TherapistFacts) -> str:
    return _token(f"therapist:{therapist.id}:{therapist.feed_rotation}")


def feed_url_for(therapist: Therapist) -> str:
    return _url(feed_token_for(therapist))


def rotate_feed_token(therapist: Therapist) -> str:
    """Revoke the therapist's feed URL and return the new token. The caller commits."""
    therapist.feed_rotation += 1
    return feed_token_for(therapist)


def clinic_feed_token(clinic: Clinic) -> str:
    """The front desk's token, for the feed of every therapist's visits."""
    return _token(f"clinic:{clinic.id}:{clinic.feed_rotation}")


def clinic_feed_url(clinic: Clinic) -> str:
    return _url(clinic_feed_token(clinic))


def rotate_clinic_feed_token(clinic: Clinic) -> str:
    """Revoke the clinic-wide feed URL and return the new token. The caller commits."""
    clinic.feed_rotation += 1
    return clinic_feed_token(clinic)


def feed_owner_for_token(token: str) -> Therapist | Clinic | None:
    """Whose current token this is (an active therapist, or the clinic), else None.

    Every candidate is compared, in constant time, so the time taken says nothing about how
    close a guess came.
    """
    found: TherapistFacts | Clinic | None = None
    given = token.encode()
    try:
        # The therapists from the reference data: a feed's 304 reads no therapist rows.
        candidates: list[TherapistFacts | Clinic] = [
            therapist for therapist in reference_data().therapists if therapist.active
        ]
        candidates.append(current_clinic())
    except ClinicNotConfigured:
        return None
    for candidate in candidates:
        expected = (
            clinic_feed_token(candidate)
            if isinstance(candidate, Clinic)
            else feed_token_for(candidate)
        )
        if hmac.compare_digest(expected.encode(), given):
            found = candidate
    return found if found is None or isinstance(found, Clinic) else therapist_row(found)


def therapist_for_feed_token(token: str) -> Therapist | None:
    """The therapist whose current token this is, compared in constant time; else None."""
    owner = feed_owner_for_token(token)
    return owner if isinstance(owner, Therapist) else None


def _url(token: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/feeds/{token}.ics"


def _token(subject: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"calendar-feed:{subject}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:20]).decode().rstrip("=").lower()
