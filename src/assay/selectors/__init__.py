"""Everything that chooses among candidates."""
