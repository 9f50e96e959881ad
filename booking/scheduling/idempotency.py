"""Idempotency-Key: a request repeated with the same key and body gets the first answer again.

The key is claimed inside the booking's own transaction, before the booking: a repeat that
arrives while the first is still running waits for it (the key's unique index) and then
replays its answer; if the first failed, nothing was kept and the repeat books afresh.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select

from booking.database import insert_for_dialect
from booking.extensions import db
from booking.models import IdempotencyKey, utc_now


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: dict


class IdempotencyKeyReused(Exception):
    """The same key came with a different request body."""


def fingerprint(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def claim(scope: str, key: str, request_fingerprint: str) -> StoredAnswer | IdempotencyKey:
    """Claim the key for this request, or return the answer already given under it.

    Call inside a writing transaction. The claim holds until the transaction ends: committed
    with record(), the answer is kept; rolled back, the key is free again.
    """
    _forget_expired(scope)
    statement = insert_for_dialect(IdempotencyKey).values(
        scope=scope,
        key=key,
        request_fingerprint=request_fingerprint,
        response_status=0,
        response_body={},
        created_at=utc_now(),
    )
    # The new key's row comes back from the INSERT itself; only a key already taken is read.
    claimed = db.session.scalars(
        statement.on_conflict_do_nothing(index_elements=["scope", "key"]).returning(
            IdempotencyKey
        )
    ).first()
    if claimed is not None:
        return claimed
    stored = db.session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    ).one()
    if stored.request_fingerprint != request_fingerprint:
        raise IdempotencyKeyReused(key)
    return StoredAnswer(stored.response_status, stored.response_body)


def record(claimed: IdempotencyKey, status: int, body: dict) -> None:
    claimed.response_status = status
    claimed.response_body = body


def _forget_expired(scope: str) -> None:
    ttl = timedelta(hours=current_app.config["IDEMPOTENCY_KEY_TTL_HOURS"])
    db.session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.scope == scope, IdempotencyKey.created_at < utc_now() - ttl
        )
    )
