"""Text contrast: every text colour the stylesheets declare reads at WCAG AA (>= 4.5:1).

The stylesheets are parsed (not a list copied by hand, which would drift): each rule that sets a
`color` is checked against the background it declares itself (a gradient is checked at each of
its stops; a translucent colour is blended over every surface it may sit on), or, when it
declares none, against every surface of the theme that text sits on. `var(--x)` resolves through
the `:root` tokens. Skipped, with their reason: text made invisible on purpose (`transparent`,
gradient-filled headings), `currentColor`/`inherit` (checked where the colour is declared), and
disabled controls (WCAG 1.4.3 exempts inactive components).
"""

import re
from pathlib import Path

import pytest

CSS_DIR = Path(__file__).resolve().parents[2] / "static" / "css"
STYLESHEETS = ["aegis.css", "flows.css", "history.css", "staff.css"]
AA_NORMAL_TEXT = 4.5

# The opaque surfaces text without a background of its own sits on (aegis.css): the page, inputs,
# panels and tables, raised rows, the panel gradient's foot, toasts, the session warning.
SURFACES = ["var(--bg)", "var(--bg-2)", "var(--surface)", "var(--surface-2)", "#101727", "#162036", "#1d2437"]
NAMED = {"white": "#ffffff", "black": "#000000"}
SKIP_COLOURS = {"transparent", "currentcolor", "inherit", "initial", "unset"}
DISABLED = re.compile(r"\[disabled\]|:disabled")


def css_rules(text: str) -> list[tuple[str, dict[str, str]]]:
    """(selector, declarations) for every style rule; @media blocks are flattened, @keyframes skipped."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"@keyframes[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", text)
    rules = []
    for selector, body in re.findall(r"([^{}@]+)\{([^{}]*)\}", text):
        declarations = {}
        for declaration in body.split(";"):
            name, sep, value = declaration.partition(":")
            if sep:
                declarations[name.strip().lower()] = value.replace("!important", "").strip()
        rules.append((" ".join(selector.split()), declarations))
    return rules


def root_tokens(rules) -> dict[str, str]:
    tokens = {}
    for selector, declarations in rules:
        if selector == ":root":
            tokens.update({k: v for k, v in declarations.items() if k.startswith("--")})
    return tokens


def resolve(value: str, tokens: dict[str, str]) -> str:
    for _ in range(5):  # tokens may refer to tokens
        value = re.sub(r"var\((--[\w-]+)\)", lambda m: tokens.get(m.group(1), m.group(0)), value)
    return value


def parse_colour(value: str) -> tuple[float, float, float, float] | None:
    """(r, g, b, alpha) in 0..255 / 0..1, or None for what is not a single colour."""
    value = NAMED.get(value.strip().lower(), value.strip().lower())
    if m := re.fullmatch(r"#([0-9a-f]{3}|[0-9a-f]{6})", value):
        digits = m.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return (*(int(digits[i : i + 2], 16) for i in (0, 2, 4)), 1.0)
    if m := re.fullmatch(r"rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\s*\)", value):
        alpha = m.group(4) or "1"
        alpha = float(alpha[:-1]) / 100 if alpha.endswith("%") else float(alpha)
        return (float(m.group(1)), float(m.group(2)), float(m.group(3)), alpha)
    return None


def colours_in(value: str) -> list[tuple[float, float, float, float]]:
    """Every colour named in a background value (a gradient's stops, or the one colour)."""
    found = re.findall(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b|rgba?\([^)]*\)|\bwhite\b|\bblack\b", value)
    return [c for c in (parse_colour(f) for f in found) if c]


def blend(top, bottom):
    r, g, b, a = top
    return (*(a * t + (1 - a) * u for t, u in zip((r, g, b), bottom[:3], strict=True)), 1.0)


def luminance(colour) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in colour[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one, other) -> float:
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def declared_pairs():
    """(file, selector, text colour, background description, ratio) for every text colour declared."""
    all_rules = {name: css_rules((CSS_DIR / name).read_text()) for name in STYLESHEETS}
    tokens = root_tokens(all_rules["aegis.css"])
    surfaces = [parse_colour(resolve(s, tokens)) for s in SURFACES]
    pairs = []
    for name, rules in all_rules.items():
        for selector, declarations in rules:
            raw = declarations.get("color")
            if not raw or raw.lower() in SKIP_COLOURS or DISABLED.search(selector) or raw.startswith("--"):
                continue
            fg = parse_colour(resolve(raw, tokens))
            assert fg is not None, f"{name}: {selector} has a colour the contrast check cannot read: {raw}"
            background = resolve(declarations.get("background-color") or declarations.get("background") or "", tokens)
            stops = colours_in(background)
            grounds = []
            for surface_name, surface in zip(SURFACES, surfaces, strict=True):
                for stop in stops or [surface]:
                    ground = blend(stop, surface)
                    grounds.append((ground, f"{background or 'the surface'} over {surface_name}"))
            for ground, described in grounds:
                text = blend(fg, ground)
                pairs.append((name, selector, raw, described, contrast(text, ground)))
    return pairs


def test_the_parser_finds_the_pairs_it_must_judge():
    # A parser that found nothing would pass everything: pin a few pairs that must be seen.
    selectors = {selector for _, selector, *_ in declared_pairs()}
    assert {".muted", ".faint", ".bell-count", ".btn-primary", ".toast-close"} <= selectors
    assert len(selectors) > 60


def test_known_bad_pairs_are_measured_as_bad():
    # The walk-through's numbers: the old faint grey on the page, white on the old bell red.
    assert contrast(parse_colour("#5f6b85"), parse_colour("#121a2b")) < 3.6
    assert contrast(parse_colour("#ffffff"), parse_colour("#f87171")) == pytest.approx(2.77, abs=0.01)
    # A translucent background is blended over its surface before it is judged.
    tint = blend(parse_colour("rgba(248, 113, 113, .12)"), parse_colour("#121a2b"))
    assert contrast(parse_colour("#f87171"), tint) > 4.5


def test_every_declared_text_colour_meets_aa():
    failures = sorted(
        {
            f"{name}: {selector} {{color: {raw}}} on {ground} = {ratio:.2f}:1"
            for name, selector, raw, ground, ratio in declared_pairs()
            if ratio < AA_NORMAL_TEXT
        }
    )
    assert not failures, "Text below 4.5:1:\n" + "\n".join(failures)
