"""User-facing errors: anything a user can cause (bad file, bad catalog) raises a HumdexError.

The CLI prints `humdex: error: <message>` and exits with EXIT_USER_ERROR, without a traceback;
the server turns it into a 4xx answer. Bugs stay ordinary exceptions.
"""

EXIT_USER_ERROR = 2


class HumdexError(Exception):
    """A problem the user can fix (input file, arguments, catalog state)."""


class AudioError(HumdexError):
    """An audio or pitch file that cannot be used as input: unreadable, empty, silent, too short/long."""


class CatalogError(HumdexError):
    """A catalog folder that is missing, corrupt or inconsistent."""


class ModelError(HumdexError):
    """A model checkpoint that is missing, corrupt or incompatible."""
