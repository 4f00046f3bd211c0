"""`make config-docs`: write the configuration table generated from `app.config`'s declarations
into README.md, between its two markers (tests/unit/test_config_docs.py keeps them equal)."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"
SECTION = re.compile(re.escape(START) + r"\n(.*?)" + re.escape(END), re.DOTALL)


def table_in(readme: str) -> str | None:
    """The table between the README's markers (None without them)."""
    found = SECTION.search(readme)
    return found.group(1) if found else None


def main() -> None:
    readme = README.read_text()
    if table_in(readme) is None:
        raise SystemExit(f"README.md has no {START} … {END} section")
    README.write_text(SECTION.sub(lambda _: f"{START}\n{markdown_table()}{END}", readme))


if __name__ == "__main__":
    main()
