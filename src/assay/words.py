"""Counts in messages read as English: `1 attempt`, `3 attempts`."""


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
