"""Keep the dashboard's message catalogue in step with the code.

``python -m ringscope.app.dashboard.messages`` extracts every ``_()``,
``N_()`` and ``ngettext()`` string of the dashboard (Babel's Python
extractor), adds the new ones to each ``.po`` untranslated, and drops the
ones the code no longer uses; translations are then written into the
``.po`` by hand. ``--check`` only reports (exit 1 when out of step), which
is what the catalogue test asserts too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ringscope.app.dashboard.i18n import DOMAIN, LOCALE_DIR

__all__ = ["KEYWORDS", "extract", "catalogue_path", "read", "problems", "update"]

#: the calls that mark a message (``ngettext`` has two: singular, plural)
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
DASHBOARD = Path(__file__).parent


def extract(root: Path = DASHBOARD) -> dict[str, str | None]:
    """msgid → plural msgid (or None) of every marked string under ``root``.

    Example
    -------
    >>> extract()["Alert queue"] is None
    True
    """
    from babel.messages.extract import extract_from_dir

    found: dict[str, str | None] = {}
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(root), method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=(), strip_comment_tags=True
    ):
        if isinstance(message, tuple):
            found[message[0]] = message[1]
        elif message:
            found.setdefault(message, None)
    return found


def catalogue_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(lang: str):
    """The Babel ``Catalog`` of ``lang``."""
    from babel.messages.pofile import read_po

    with catalogue_path(lang).open("rb") as fh:
        return read_po(fh, locale=lang, domain=DOMAIN)


def problems(lang: str = "zh_CN", root: Path = DASHBOARD) -> dict[str, list[str]]:
    """What is out of step: ``missing`` (used, not translated) and
    ``obsolete`` (in the .po, used nowhere)."""
    used = extract(root)
    cat = read(lang)
    have = {}
    for msg in cat:
        if msg.id:
            key = msg.id[0] if isinstance(msg.id, (tuple, list)) else msg.id
            strings = msg.string if isinstance(msg.string, (tuple, list)) else (msg.string,)
            have[key] = bool(strings) and all(s and s.strip() for s in strings) and not msg.fuzzy
    return {
        "missing": sorted(m for m in used if not have.get(m)),
        "obsolete": sorted(set(have) - set(used))
        + sorted(m.id if isinstance(m.id, str) else m.id[0] for m in cat.obsolete.values()),
    }


def update(lang: str = "zh_CN", root: Path = DASHBOARD) -> tuple[int, int]:
    """Add new msgids (untranslated) to ``lang``'s catalogue and drop unused
    ones; returns (added, dropped)."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    from ringscope.graph.files import atomic_write_bytes

    used = extract(root)
    old = read(lang) if catalogue_path(lang).exists() else Catalog(locale=lang, domain=DOMAIN)
    new = Catalog(locale=lang, domain=DOMAIN, project="ringscope", fuzzy=False)
    kept = {(m.id[0] if isinstance(m.id, (tuple, list)) else m.id): m for m in old if m.id}
    added = 0
    for msgid in sorted(used):
        plural = used[msgid]
        prior = kept.get(msgid)
        ident = (msgid, plural) if plural else msgid
        string = prior.string if prior is not None else (("", "") if plural else "")
        if plural and isinstance(string, str):
            string = (string,)
        if not plural and isinstance(string, (tuple, list)):
            string = string[0]
        added += prior is None
        new.add(ident, string)
    import io

    buf = io.BytesIO()
    write_po(buf, new, width=120, omit_header=False, sort_output=True, no_location=True)
    catalogue_path(lang).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(catalogue_path(lang), buf.getvalue())
    return added, len(set(kept) - set(used))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report only; exit 1 when out of step")
    parser.add_argument("--lang", default="zh_CN")
    args = parser.parse_args(argv)
    if args.check:
        found = problems(args.lang)
        for kind, items in found.items():
            for item in items:
                print(f"{kind}: {item}")
        return 1 if any(found.values()) else 0
    added, dropped = update(args.lang)
    print(f"{catalogue_path(args.lang)}: {added} new, {dropped} dropped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
