"""The one exception type the ID-photo tools raise for a user's mistake or a bad input."""


class IDPhotoError(RuntimeError):
    """A problem the user can fix (bad file, no face, impossible size limit…); the message is one line."""
