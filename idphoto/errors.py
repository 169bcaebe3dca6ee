"""The one exception type the ID-photo tools raise for a user's mistake or a bad input."""
from core.errors import UserError


class IDPhotoError(UserError, RuntimeError):
    """A problem the user can fix (bad file, no face, impossible size limit…); the message is one line."""
