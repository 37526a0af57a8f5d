"""Plain domain logic: no Flask imports. Each module answers one question."""
