"""argparse ``type=`` functions for the tools' and benchmarks' numeric options: a value out of
range is argparse's one-line usage error naming the option. Needs nothing but the standard
library (the op benchmark runs on machines with torch alone)."""
import argparse


def _number(text: str, kind: type, minimum: float, inclusive: bool):
    try:
        value = kind(text)
    except ValueError:
        noun = 'a whole number' if kind is int else 'a number'
        raise argparse.ArgumentTypeError(f'must be {noun}, got {text!r}') from None
    if value < minimum or (not inclusive and value == minimum):
        raise argparse.ArgumentTypeError(
            f'must be {">=" if inclusive else ">"} {kind(minimum)}, got {value}')
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return _number(text, int, 1, inclusive=True)


def non_negative_int(text: str) -> int:
    """A whole number >= 0."""
    return _number(text, int, 0, inclusive=True)


def positive_float(text: str) -> float:
    """A number > 0."""
    return _number(text, float, 0., inclusive=False)


def non_negative_float(text: str) -> float:
    """A number >= 0."""
    return _number(text, float, 0., inclusive=True)
