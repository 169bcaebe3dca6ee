"""The one base class of the mistakes a user can fix, and the training, evaluation and preparation ones.

Every script runs its body through :func:`core.cli.guarded`, which reports any :class:`UserError` in one line
on stderr with exit code 1 (``--debug`` shows the traceback of everything else). The packages derive
their own from it: :class:`idphoto.errors.IDPhotoError`, :class:`models.weights.WeightsError`,
:class:`idphoto.specs.SpecError` and :class:`core.runtime.DeviceUnavailable`.
"""
import textwrap


def clip(text: str, limit: int = 120) -> str:
    """``text``'s first line cut to at most ``limit`` characters at a word boundary, with "…" where cut: a
    library's long message quoted in a one-line error never ends mid-word."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    if len(first) <= limit:
        return first
    short = textwrap.shorten(first, width=limit, placeholder=" …")
    return short if short.strip(" …") else first[:limit - 1] + "…"  # one word longer than the limit


class UserError(Exception):
    """A problem the user can fix (a bad flag, file or data set); its message is one line meant for them."""


class TrainError(UserError):
    """train.py: a bad flag, missing data, a folder that holds another run, a diverged run."""


class EvalError(UserError):
    """evaluate.py: a missing checkpoint or data set, unmatched photos and masks, an unreadable sample."""


class PrepareError(UserError):
    """prepare_aifenge.py: a --src that holds no known layout, or no pairs at all."""
