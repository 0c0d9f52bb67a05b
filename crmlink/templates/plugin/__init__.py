"""Templates of `crmlink new-plugin`: ``str.format`` text, ``{{``/``}}`` for literal braces."""
