"""The clinic's rules as pure functions over plain values: no Flask, no database.

Tested and benchmarked without either."""
