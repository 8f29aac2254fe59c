"""Directory-based datasets (placeholders in wids as well; nothing is implemented yet)."""

__all__: list[str] = []
