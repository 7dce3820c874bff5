"""mkdocs hook: fills the option tables of configuration.md from the settings model.

Each ``<!-- ocsd-options: SECTION -->`` line of the page becomes the table of that
section's options (:func:`ocsd.config.reference.render_page`), so the published
reference is the model itself: names, environment variables, types, defaults, ranges
and help text cannot drift from the code. A section without its line, or a line naming
no section, fails the build.
"""

from __future__ import annotations

from typing import Any

from mkdocs.exceptions import PluginError

from ocsd.config.reference import render_page

PAGE = "configuration.md"


def on_page_markdown(markdown: str, page: Any, **_kwargs: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    try:
        return render_page(markdown)
    except LookupError as exc:
        raise PluginError(f"{PAGE}: {exc}") from None
