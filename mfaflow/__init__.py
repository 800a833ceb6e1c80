"""mfaflow: authentication flows with MFA, as YAML state machines."""

from ._errors import *  # noqa: F403  (the exception tree is public as a whole)
from ._errors import __all__ as _error_names
from ._version import __version__

__all__ = ["__version__", *_error_names]
