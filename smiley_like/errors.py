"""The exceptions smiley_like raises for problems a user can act on."""


class SmileyError(Exception):
    """A problem reported to the user as one line, without a traceback."""


class UsageError(SmileyError):
    """The command line asks for something that cannot be done (a missing script, say)."""


class StoreError(SmileyError):
    """The run database is missing, locked, or not one of ours."""


class StoreBusy(StoreError):
    """The database stayed locked by another process for longer than the busy timeout."""


class UnknownRun(StoreError):
    """A run id that matches no run, or more than one."""


class WireError(SmileyError):
    """A message on the socket that is not one of ours, or a socket we cannot use."""
