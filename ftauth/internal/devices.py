"""A short, readable name for the browser a grant was obtained with: "Firefox 128 · Linux".

What the admin shows of a device, and all ftauth keeps of its ``User-Agent``: the
full header says more about a person's machine than telling two devices apart needs.
Read in order, because browsers borrow each other's names: Edge and Opera say
"Chrome", Chrome says "Safari", every one says "Mozilla".
"""

from __future__ import annotations

import re

BROWSERS = (
    ("Edg", "Edge"),
    ("Edge", "Edge"),
    ("EdgiOS", "Edge"),
    ("OPR", "Opera"),
    ("SamsungBrowser", "Samsung Internet"),
    ("FxiOS", "Firefox"),
    ("Firefox", "Firefox"),
    ("CriOS", "Chrome"),
    ("HeadlessChrome", "Chrome"),
    ("Chrome", "Chrome"),
    ("Version", "Safari"),  # Safari's own version; "Safari/605" is WebKit's
)
SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)
# A product token, "name/version", for what is not a browser (curl, an app).
PRODUCT = re.compile(r"([A-Za-z][\w.-]{0,30})/(\d+)")
LENGTH = 60


def describe(user_agent: str) -> str:
    """``Browser major · System``, else the first product token's name and major
    version, else the system; text that is none of these (a summary already, an odd
    header) is kept, cut to 60 characters."""
    user_agent = " ".join(user_agent.split())
    if "/" not in user_agent:
        return user_agent[:LENGTH]  # no product token: nothing to read in it
    browser = next(
        (
            f"{name} {match[1]}"
            for token, name in BROWSERS
            if (match := re.search(rf"\b{token}/(\d+)", user_agent))
        ),
        "",
    )
    system = next((name for token, name in SYSTEMS if token in user_agent), "")
    if browser:
        return f"{browser} · {system}" if system else browser
    product = next((m for m in PRODUCT.finditer(user_agent) if m[1] != "Mozilla"), None)
    if product:
        return f"{product[1]} {product[2]}"
    return system or user_agent[:LENGTH]
