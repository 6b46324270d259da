"""Exception types, one per kind of user mistake, so callers can tell bad input from a bug."""


class CardiacError(Exception):
    """Base class of every error this library raises on purpose."""


class CardiacInputError(CardiacError, ValueError):
    """An input file or folder is missing, unreadable, or not what the action needs."""


class CardiacModelError(CardiacError, RuntimeError):
    """A model folder is missing, corrupt, or does not match what inference expects."""


class CardiacCancelled(CardiacError):
    """Long work was stopped on request (a GUI's Cancel, or its result would no longer be shown)."""
