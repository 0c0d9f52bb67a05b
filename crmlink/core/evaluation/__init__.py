"""The evaluation cycle: audits kept in the store, what changed between them, strategic
stage and relationship level, expectations and the period review.

Saved audits live in tables of their own (:mod:`.tables`) in a compact layout: one row of
small integers per account and per finding, never the JSON document. Everything else
works on :class:`~.snapshot.Snapshot`, made from a saved audit or from a fresh audit
document alike.
"""
