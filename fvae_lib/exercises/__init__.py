"""Checkers for the notebooks' exercises: call one with your function and get immediate feedback.

Each checker runs your function on cases with known answers, prints what passed or what went wrong
(and a hint), and returns True or False. A function that still raises NotImplementedError is
reported as "not done yet" rather than as an error, so an exercise notebook runs top to bottom.
"""
from .code import *  # noqa: F401,F403
from .code import __all__ as _code
from .concepts import *  # noqa: F401,F403
from .concepts import __all__ as _concepts
from .scoring import *  # noqa: F401,F403
from .scoring import __all__ as _scoring
from .steps import *  # noqa: F401,F403
from .steps import __all__ as _steps

__all__ = _code + _concepts + _scoring + _steps
