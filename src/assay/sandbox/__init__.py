"""Everything that runs untrusted code."""
