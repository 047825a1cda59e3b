"""The one exception type that carries a message meant for a person.

Anything raised as :class:`Word2BertError` is printed by the CLI as a single line
(``word2bert: error: <message>``) with exit status 2, never as a traceback. Messages
name the file, line or parameter that is wrong.
"""


class Word2BertError(Exception):
    """A user-facing error: bad input, bad parameter, missing or corrupt file."""


class UnknownWordError(Word2BertError, KeyError):
    """A word (or document tag) that is not in the vocabulary.

    Also a :class:`KeyError`, so code written for gensim (``except KeyError:`` around
    ``wv[word]``) keeps working. Its text is the message itself, not ``KeyError``'s quoted
    repr of it, so the CLI prints ``word 'zebra' is not in the vocabulary``.
    """

    def __init__(self, key, message: str | None = None):
        self.key = key
        super().__init__(message if message is not None else f"word {key!r} is not in the vocabulary")

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self):
        return type(self), (self.key, str(self))


def check_positive(name: str, value, allow_zero: bool = False):
    """Raise a Word2BertError unless ``value`` > 0 (or >= 0 with ``allow_zero``)."""
    try:
        ok = value >= 0 if allow_zero else value > 0
    except TypeError:
        ok = False
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise Word2BertError(f"parameter {name}={value!r} must be {bound}")
    return value
