"""`{% icon "name" %}`: small inline SVG icons, drawn by the app itself (no emoji: a machine
without an emoji font shows empty boxes; no icon font or CDN either).

Each icon is a 24×24 stroke drawing in the current text colour, hidden from screen readers
(the text beside it says what it means); pass label="..." for an icon that stands alone.
"""

from django import template
from django.utils.html import format_html

register = template.Library()

# Path data on a 24×24 grid, stroked (round caps and joins).
PATHS = {
    "bank": "M3 10h18M5 10v8M9 10v8M15 10v8M19 10v8M3 21h18M12 3l9 5H3z",
    "receipt": "M6 3h12v18l-3-2-3 2-3-2-3 2zM9 8h6M9 12h6M9 16h4",
    "chart": "M4 20V4M4 20h16M7 15l4-4 3 3 5-6",
    "bell": "M6 16V11a6 6 0 0 1 12 0v5l2 2H4zM10 21h4",
    "search": "M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14zM21 21l-5-5",
    "user": "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21a8 8 0 0 1 16 0",
    "users": "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM2 21a7 7 0 0 1 14 0M16 3.5a4 4 0 0 1 0 7.5M18 14a7 7 0 0 1 4 7",
    "send": "M22 2L11 13M22 2l-7 20-4-9-9-4z",
    "check": "M5 12l5 5 9-10",
    "alert": "M12 3l10 18H2zM12 10v4M12 17.5v.5",
    "info": "M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20zM12 11v6M12 7.5v.5",
    "close": "M6 6l12 12M18 6L6 18",
    "shield": "M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z",
    "document": "M14 3H6v18h12V7zM14 3v4h4M9 13h6M9 17h6",
    "inbox": "M3 13l3-8h12l3 8v6H3zM3 13h5l1 3h6l1-3h5",
    "filter": "M3 5h18l-7 8v6l-4 2v-8z",
    "star": "M12 3l2.8 5.7 6.2.9-4.5 4.4 1 6.2L12 17.3 6.5 20.2l1-6.2L3 9.6l6.2-.9z",
}


@register.simple_tag
def icon(name: str, label: str = "", size: int = 20, css: str = ""):
    path = PATHS.get(name)
    if path is None:  # a typo must not pass silently in a template
        raise template.TemplateSyntaxError(f"No icon named {name!r}; known: {', '.join(sorted(PATHS))}.")
    a11y = format_html('role="img" aria-label="{}"', label) if label else format_html('aria-hidden="{}"', "true")
    return format_html(
        '<svg class="icon {}" width="{}" height="{}" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
        'stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" focusable="false" {}><path d="{}"/></svg>',
        css,
        size,
        size,
        a11y,
        path,
    )
