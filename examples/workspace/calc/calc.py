"""A tiny calculator: the workspace of examples/workspace_tasks.jsonl. add() has a bug."""


def add(a, b):
    """The sum of a and b."""
    return a - b


def mul(a, b):
    """The product of a and b."""
    return a * b
