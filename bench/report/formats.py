"""How figures are written: percents, counts, signed differences, verdicts."""

from __future__ import annotations

NONE = "—"


def pct(value: float | None) -> str:
    """A share as a percent with two decimals: 0.9591 -> "95.91 %"."""
    return NONE if value is None else f"{100 * value:.2f} %"


def num(value: float | None, unit: str = "") -> str:
    """A figure as recorded, with thousands separators: 140000 -> "140,000"."""
    return NONE if value is None else f"{value:,}{unit}"


def fixed(value: float, digits: int) -> str:
    """A figure with a fixed number of decimals: fixed(0.7258, 3) -> "0.726"."""
    return f"{value:,.{digits}f}"


def points(difference: float) -> str:
    """A difference of two shares in percentage points, signed: 0.0049 -> "+0.49"."""
    return f"{100 * difference:+.2f}"


def level(share: float) -> str:
    """A target share as a percent, as short as it is exact: 0.9 -> "90 %", 0.995 -> "99.5 %"."""
    return f"{100 * share:g} %"


def short(value: float) -> str:
    """A definition's value as short as it is exact: 15.0 -> "15", 1.5 -> "1.5"."""
    return f"{value:g}"


def met(ok: bool) -> str:
    """A verdict where meeting the target is the rule: only a miss is bold."""
    return "met" if ok else "**not met**"


def verdict(ok: bool) -> str:
    """A verdict in a list of targets: both bold."""
    return f"**{'met' if ok else 'not met'}**"


def yes(ok: bool, bold_no: bool = False) -> str:
    return "yes" if ok else ("**no**" if bold_no else "no")


def size(height: int, width: int, sep: str = "x") -> str:
    """An image size as height x width: the way input sizes are spelled in the results."""
    return f"{height}{sep}{width}"


def checks(items: list[tuple[str, bool]]) -> str:
    """Targets in a line: "label **met**; label **not met**"."""
    return "; ".join(f"{label} {verdict(ok)}" for label, ok in items)
