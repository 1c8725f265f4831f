"""Exception types with messages meant for people, not stack traces.

Every error that a user can cause (a bad parameter, a missing or corrupt file, a malformed table)
is raised as a subclass of :class:`AtlaskitError`. The command line prints its message and exits
with status 2 instead of showing a traceback.
"""


class AtlaskitError(Exception):
    """Base class of every user-facing atlaskit error."""


class DataError(AtlaskitError, ValueError):
    """Input data (a table, a FASTA file, an image) is malformed; the message names the file or record."""


class FetchError(AtlaskitError, RuntimeError):
    """A registered data file could not be obtained (offline, checksum mismatch, unknown name)."""


class ParameterError(AtlaskitError, ValueError):
    """A chapter parameter or command-line option has an unknown name or an invalid value."""
