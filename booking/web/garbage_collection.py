"""The cyclic garbage collector of a serving process (gunicorn's workers, via wsgi.py)."""

import gc


def collect_less_while_serving() -> None:
    """Call once the app is loaded.

    A server process keeps what it loaded for its whole life (modules, mappers, the clinic's
    reference data): the cyclic garbage collector leaves those alone (gc.freeze), and it runs
    after 50,000 new objects rather than 700. Most of what a request makes is freed by
    reference counting when it ends, before a collection would have traversed and promoted
    it; with the default, an availability answer of a thousand slots triggered several
    collections, and every few dozen answers a full one over the whole heap
    (docs/request-costs.md).
    """
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)
