"""Standard-library helpers every layer may use: atomic writes and the table printer."""
