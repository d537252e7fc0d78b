"""Server-side geometry for the small inline-SVG charts (no JavaScript chart library).

Functions take plain numbers and return what a template needs to draw: coordinates already
scaled into a fixed viewBox, so templates only print them.
"""

from datetime import date


def line_chart(values: list[int], *, width: int = 600, height: int = 160, pad: int = 6) -> dict | None:
    """A polyline and the area under it for a series (e.g. balance after each posting)."""
    if len(values) < 2:
        return None
    low, high = min(0, *values), max(values)
    span = (high - low) or 1
    step = (width - 2 * pad) / (len(values) - 1)

    def y(v: int) -> float:
        return round(height - pad - (v - low) * (height - 2 * pad) / span, 1)

    points = [(round(pad + i * step, 1), y(v)) for i, v in enumerate(values)]
    line = " ".join(f"{x},{yy}" for x, yy in points)
    area = f"M{points[0][0]},{height - pad} L" + " L".join(f"{x},{yy}" for x, yy in points)
    area += f" L{points[-1][0]},{height - pad} Z"
    return {
        "width": width,
        "height": height,
        "line": line,
        "area": area,
        "last_x": points[-1][0],
        "last_y": points[-1][1],
        "low": low,
        "high": high,
    }


def bar_chart(days: list[dict], *, keys: tuple[str, ...], width: int = 600, height: int = 180, pad: int = 4) -> dict:
    """Grouped bars per day for each key in `keys` (one colour class per key, in order)."""
    peak = max([int(d[k]) for d in days for k in keys] or [0])
    n = max(1, len(days))
    slot = (width - 2 * pad) / n
    gap = max(1.0, slot * 0.2)
    bar_w = max(1.0, (slot - gap) / len(keys))
    usable = height - 2 * pad
    bars = []
    for i, day in enumerate(days):
        label = date.fromisoformat(day["date"]).strftime("%d %b")
        for j, key in enumerate(keys):
            value = int(day[key])
            h = 0 if peak == 0 else round(value * usable / peak, 1)
            if value and h < 2:
                h = 2  # a non-zero day is always visible
            bars.append(
                {
                    "x": round(pad + i * slot + gap / 2 + j * bar_w, 1),
                    "y": round(height - pad - h, 1),
                    "w": round(bar_w, 1),
                    "h": h,
                    "key": key,
                    "index": j,
                    "value": value,
                    "label": label,
                }
            )
    first = date.fromisoformat(days[0]["date"]).strftime("%d %b") if days else ""
    last = date.fromisoformat(days[-1]["date"]).strftime("%d %b") if days else ""
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "peak": peak,
        "first": first,
        "last": last,
        "empty": peak == 0,
    }
