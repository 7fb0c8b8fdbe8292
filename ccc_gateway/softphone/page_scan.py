"""Where in a CRM page the widget's tags may go, found by a small HTML tokenizer.

`scan_page` finds the insertion point (before a real `</body>`, else in the `<head>`, else
at the end of a page that ends outside any text region, else nowhere); `insert_at` puts the
tags there. `is_ascii_compatible_page` says whether a browser reads the page's ASCII bytes as
ASCII, so the tags (ASCII) cannot corrupt it. No aiohttp: bytes in, offsets out.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ccc_gateway.softphone.csp import WIDGET_SCRIPT

# ---------------------------------------------------------------- the page's bytes

# Encoding labels (WHATWG Encoding) whose bytes are not ASCII where ASCII is meant: UTF-16/32,
# and the ISO-2022 family, where escape sequences turn ASCII bytes into other characters.
_NOT_ASCII_LABEL = re.compile(
    r"\s*(?:utf-?(?:16|32|7)|ucs-?[24]|unicode|csunicode|iso-10646|iso-?2022|csiso2022|hz-gb"
    r"|replacement)",
    re.IGNORECASE,
)
# A declaration in the page: browsers look at the first 1024 bytes (the prescan).
_DECLARED_CHARSET = re.compile(
    rb"charset[\t\n\f\r ]*=[\t\n\f\r ]*[\"']?([^\"'\t\n\f\r ;>/]*)", re.I
)
_PRESCAN = 1024
# Byte order marks of UTF-16 (UTF-32LE starts like UTF-16LE); a mark overrides any label.
_WIDE_BOMS = (b"\xfe\xff", b"\xff\xfe", b"\x00\x00\xfe\xff")


def is_ascii_compatible_label(label: str) -> bool:
    return _NOT_ASCII_LABEL.match(label) is None


def is_ascii_compatible_page(page: bytes) -> bool:
    """Whether a browser reads this page's ASCII bytes as ASCII (the Content-Type's charset
    is checked before, by `is_injectable`): no UTF-16 byte order mark, no NUL (UTF-16/32
    without a mark) or ESC (ISO-2022) byte, no such charset declared in the page."""
    if page.startswith(_WIDE_BOMS) or b"\x00" in page or b"\x1b" in page:
        return False
    if page.startswith(b"\xef\xbb\xbf"):
        return True  # a UTF-8 mark wins over any declaration
    return all(
        is_ascii_compatible_label(m.group(1).decode("latin-1"))
        for m in _DECLARED_CHARSET.finditer(page, 0, _PRESCAN)
    )


# ---------------------------------------------------------------- where the tags go
#
# A reading of the HTML tokenizer (HTML Living Standard §13.2.5) over bytes, enough to tell
# where the tokenizer is in its data state: between tags, outside comments and the elements
# whose content is text (RAWTEXT, RCDATA, script data with its escapes). The tree builder
# decides some of that (which start tags switch the tokenizer); where this reading could
# differ from a browser's (SVG/MathML content, `<select>`), the scan stops and trusts only
# what it found before. The standard library's `html.parser` gives no byte offsets and knows
# neither the RCDATA elements (textarea, title) nor script escapes, so it is not used; the
# cost of this scan is in bench/RESULTS.md ("The widget's page scan").


def _attribute_pattern(group: bytes) -> bytes:
    """An attribute: a name, then either `=` and a value (which must end: a quote left open
    runs to the end of the page) or no `=` at all. `group` opens the groups around the name
    and the value: `(` to capture them, `(?:` where they are repeated (capturing costs).
    """
    return (
        group + rb"[^\t\n\f\r />][^\t\n\f\r />=]*+)"
        rb"(?>[\t\n\f\r ]*+=[\t\n\f\r ]*+"
        + group
        + rb"\"[^\"]*+\"|'[^']*+'|(?![\"'])[^\t\n\f\r >]*+)"
        rb"|(?![\t\n\f\r ]*+=))"
    )


_ATTRIBUTE = re.compile(_attribute_pattern(b"("))
# A start or end tag from `<` to `>`: its name, its attributes (quoted values may hold `>`),
# and a `/` right before `>`. Possessive quantifiers: an unterminated tag fails in linear time.
_ATTRIBUTES_PATTERN = rb"(?:[\t\n\f\r ]++|/(?!>)|" + _attribute_pattern(b"(?:") + rb")*+"
_TAG = re.compile(
    rb"<(?P<end>/?)(?P<name>[A-Za-z][^\t\n\f\r />]*+)"
    rb"(?P<attributes>" + _ATTRIBUTES_PATTERN + rb")(?P<closed>/?)>"
)
_COMMENT_END = re.compile(rb"--!?>")
# Elements whose content is text up to their own end tag (RAWTEXT and RCDATA; `noscript`
# because browsers run scripts). `script` has escapes of its own, below.
_TEXT_ELEMENTS = frozenset(
    (b"style", b"xmp", b"iframe", b"noembed", b"noframes", b"noscript", b"textarea", b"title")
)
# Case: the scan matches its patterns against a lower-cased copy of the page (`bytes.lower()`
# changes ASCII letters only, as the tokenizer does, and keeps every offset), so none of them
# needs IGNORECASE, which slowed every step of the engine and hid the literal prefixes that
# let a search skip to the next `<` at C speed (a 100 KB inline script: 1.5 ms -> 0.13 ms).
# Only `_TAG` reads the page itself: attribute values keep their case (`_is_our_script`).
_TEXT_END = {name: re.compile(rb"</" + name + rb"[\t\n\f\r />]") for name in _TEXT_ELEMENTS}
# The names `scan_page` acts on outside SVG/MathML and <select>; every other tag leaves its
# state as it is. Grouped by first letter, so that the lookahead below rejects most names on
# their first byte. Every one is at least three letters long: `_unwatched` relies on that
# (a test checks it).
_WATCHED = (
    rb"s(?:cript|tyle|vg|elect)|t(?:itle|extarea|emplate)|no(?:embed|frames|script)|iframe"
    rb"|xmp|plaintext|frameset|math|head|body"
)
# <input> and <keygen> close an open <select>, and do nothing anywhere else.
_WATCHED_IN_SELECT = _WATCHED + rb"|input|keygen"
# A run of attributes of the common shapes (`name="value"`, `name='value'`, `name=value`,
# `name`), each after whitespace: a cheaper reading of what `_ATTRIBUTES_PATTERN` reads,
# tried first. It must agree with the tokenizer wherever it matches, so it refuses the
# ambiguous spellings, left to `_ATTRIBUTES_PATTERN`: names starting with `=` or holding
# quotes, whitespace around `=`, `=` without a value, an unquoted value holding a quote.
_SIMPLE_ATTRIBUTE = (
    rb"[\t\n\f\r ]++[^\t\n\f\r />\"'=]++"
    rb"(?:=(?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >\"']++))?+"
)


def _unwatched(watched: bytes) -> re.Pattern[bytes]:
    """A pattern matching a run of text, complete comments and tags of other names than
    `watched`, in one match over the lower-cased page: most of a page's markup, skipped
    without a step of Python per tag (that was five times slower).

    The match ends before the first token it does not take (its text included, which
    `scan_page` then skips with a find). Each repetition is a run of text and the token
    after it; the alternatives come in the order of their frequency in a CRM page, the
    cheapest tests first: the engine's work per tag is what this costs.
    """
    unwatched_name = rb"(?!(?:" + watched + rb")[\t\n\f\r />])[a-z][^\t\n\f\r />]*+"
    return re.compile(
        rb"(?:[^<]*+<(?:"
        # A start or end tag of a name of one or two letters (`td`, `a`, `li`, `h1`), which
        # is never watched: no lookahead. Without attributes, then with common ones.
        rb"/?+[a-z][^\t\n\f\r />]?+>"
        rb"|/?+[a-z][^\t\n\f\r />]?+(?:" + _SIMPLE_ATTRIBUTE + rb")++>"
        # Any tag of a name that is not watched: common attributes, else any (the tokenizer's
        # reading, with `/` between them and quoted values holding `>`), and `/>`.
        rb"|/?+" + unwatched_name + rb"(?:(?:" + _SIMPLE_ATTRIBUTE + rb")*+[\t\n\f\r ]*+/?>"
        rb"|" + _ATTRIBUTES_PATTERN + rb"/?>)"
        rb"|!--(?>-?>|.*?--!?>)"  # a comment (`<!-->` and `<!--->` end at once)
        rb"|!(?!--)[^>]*+>|\?[^>]*+>|/(?![a-z])[^>]*+>"  # doctype, bogus comments, `</>`
        rb"|(?![a-z!/?])"  # a `<` in text
        rb"))*+",
        re.DOTALL,
    )


_UNWATCHED = _unwatched(_WATCHED)
_UNWATCHED_IN_SELECT = _unwatched(_WATCHED_IN_SELECT)
# Searches in a script's text; `<` first, so that the engine finds candidates at C speed.
_SCRIPT_DATA = re.compile(rb"<(?:(!--)|/script[\t\n\f\r />])")
_SCRIPT_ESCAPED = re.compile(rb"(-->)|<(?:(script[\t\n\f\r />])|/script[\t\n\f\r />])")
_SCRIPT_DOUBLE_ESCAPED = re.compile(rb"(-->)|</script[\t\n\f\r />]")
_FOREIGN_ROOTS = (b"svg", b"math")
# In SVG/MathML a start tag of these names may leave foreign content (the breakout tags),
# start HTML inside it (integration points) or switch the tokenizer as in HTML, depending
# on the tree: the scan stops rather than guess.
_FOREIGN_UNSURE = _TEXT_ELEMENTS | {
    b"script", b"plaintext", b"font", b"foreignobject", b"desc", b"annotation-xml",
    b"mi", b"mo", b"mn", b"ms", b"mtext", b"b", b"big", b"blockquote", b"body", b"br",
    b"center", b"code", b"dd", b"div", b"dl", b"dt", b"em", b"embed", b"h1", b"h2", b"h3",
    b"h4", b"h5", b"h6", b"head", b"hr", b"i", b"img", b"li", b"listing", b"menu", b"meta",
    b"nobr", b"ol", b"p", b"pre", b"ruby", b"s", b"small", b"span", b"strong", b"strike",
    b"sub", b"sup", b"table", b"tt", b"u", b"ul", b"var",
}  # fmt: skip
# Inside <select>, browsers differ on which start tags count (the older parser ignores most,
# the customizable <select> one keeps them); these two are honoured by both.
_SELECT_SURE = (b"script", b"textarea")
_OUR_SCRIPT = re.compile(
    rb"[\t\n\f\r ]*+(?:(?:https?:)?//[^/?#]*+)?"
    + re.escape(WIDGET_SCRIPT.encode())
    + rb"(?:[?#]|[\t\n\f\r ]*+$)"
)


class PageScan(NamedTuple):
    at: int  # the offset to insert the tags at; -1: nowhere safe
    injected: bool  # a real `<script src=".../widget.js">` is there already


def scan_page(page: bytes) -> PageScan:
    """Where the widget's tags may go in `page`, read as the HTML tokenizer reads it.

    Before the last `</body>` end tag (outside templates), else before `</head>`, else right
    after `<head>`, else at the very end when the page ends in the data state, else -1.
    """
    body_end = head_end = head_start = -1
    injected = False
    foreign: list[bytes] = []  # the open <svg>/<math> elements
    templates = 0  # open <template> elements: their content is not the document
    in_select = False
    whole = False  # scanned to the end without doubt
    low = page.lower()  # the copy every pattern but `_TAG` reads (see `_TEXT_END`)
    pos = 0
    while True:
        if not foreign:
            unwatched = _UNWATCHED_IN_SELECT if in_select else _UNWATCHED
            pos = unwatched.match(low, pos).end()  # type: ignore[union-attr]  # it matches ""
        lt = page.find(b"<", pos)
        if lt < 0:
            whole = True
            break
        after = page[lt + 1 : lt + 2]
        if after == b"!":
            if page.startswith(b"<!--", lt):
                pos = _comment_end(page, lt + 4)
            elif foreign and page.startswith(b"<![CDATA[", lt):
                break  # a CDATA section in real foreign content, a comment otherwise
            else:
                pos = _bogus_comment_end(page, lt)  # also <!DOCTYPE ...>
        elif after == b"/" and not page[lt + 2 : lt + 3].isalpha():
            pos = lt + 3 if page.startswith(b"</>", lt) else _bogus_comment_end(page, lt)
        elif after == b"?":
            pos = _bogus_comment_end(page, lt)
        elif after != b"/" and not after.isalpha():
            pos = lt + 1  # a `<` in text
            continue
        else:
            tag = _TAG.match(page, lt)
            if tag is None:
                break  # the page ends inside a tag
            pos = tag.end()
            name = tag["name"].lower()
            if tag["end"]:  # an end tag
                if foreign:
                    if name in foreign:  # it closes the innermost one of that name
                        del foreign[len(foreign) - 1 - foreign[::-1].index(name) :]
                elif name == b"template":
                    templates = max(templates - 1, 0)
                elif name == b"select":
                    in_select = False
                elif not templates and not in_select:
                    if name == b"body":
                        body_end = lt
                    elif name == b"head" and head_end < 0:
                        head_end = lt
                continue
            if foreign:
                if name in _FOREIGN_UNSURE:
                    break
                if name in _FOREIGN_ROOTS and not tag["closed"]:
                    foreign.append(name)
                continue
            if name == b"script" or name in _TEXT_ELEMENTS:
                if in_select and name not in _SELECT_SURE:
                    break
                if name == b"script" and not templates and _is_our_script(tag["attributes"]):
                    injected = True
                in_select = in_select and name != b"textarea"
                pos = _text_end(page, low, pos, name)
            elif name == b"plaintext":
                break  # the rest of the page is text
            elif name == b"frameset":
                return PageScan(-1, injected)  # a frameset page drops what we would add
            elif name in _FOREIGN_ROOTS:
                if in_select:
                    break
                if not tag["closed"]:  # <svg/> is closed at once
                    foreign.append(name)
            elif name == b"template":
                templates += 1
            elif name == b"select":
                in_select = True
            elif name in (b"input", b"keygen"):
                in_select = False  # they close an open <select>
            elif name == b"head" and head_start < 0 and not templates and not in_select:
                head_start = pos
        if pos < 0:
            break  # a comment, text element or tag runs to the end of the page
    at = body_end
    if at < 0:
        at = head_end if head_end >= 0 else head_start
    if at < 0 and whole and not (foreign or templates or in_select):
        at = len(page)
    return PageScan(at, injected)


def _comment_end(page: bytes, start: int) -> int:
    """The end of a comment whose `<!--` ends at `start` (`<!-->` and `<!--->` end at once)."""
    if page.startswith(b">", start):
        return start + 1
    if page.startswith(b"->", start):
        return start + 2
    end = _COMMENT_END.search(page, start)
    return -1 if end is None else end.end()


def _bogus_comment_end(page: bytes, lt: int) -> int:
    end = page.find(b">", lt)
    return -1 if end < 0 else end + 1


def _text_end(page: bytes, low: bytes, start: int, name: bytes) -> int:
    """The end of the end tag closing a text element whose content begins at `start`
    (`low`: the page lower-cased)."""
    if name == b"script":
        at = _script_end(low, start)
    else:
        end = _TEXT_END[name].search(low, start)
        at = -1 if end is None else end.start()
    if at < 0:
        return -1
    tag = _TAG.match(page, at)  # an end tag may carry attributes, with `>` in quotes
    return -1 if tag is None else tag.end()


def _script_end(low: bytes, pos: int) -> int:
    """Where the `</script` ending a script's content is: script data, its escaped state
    (after `<!--`) and double-escaped state (after `<script` in there), HTML §13.2.5.4-.31.
    `low`: the page lower-cased."""
    state = _SCRIPT_DATA
    while (found := state.search(low, pos)) is not None:
        if state is _SCRIPT_DATA:
            if found.group(1) is None:
                return found.start()
            # `<!--` ends in the "escaped dash dash" state: `<!-->` already leaves it.
            state, pos = _SCRIPT_ESCAPED, found.start() + 2
        elif state is _SCRIPT_ESCAPED:
            if found.group(1) is not None:
                state = _SCRIPT_DATA
            elif found.group(2) is not None:
                state = _SCRIPT_DOUBLE_ESCAPED
            else:
                return found.start()
            pos = found.end()
        else:
            # `-->` returns to plain script data; `</script` only to the escaped state.
            state = _SCRIPT_DATA if found.group(1) is not None else _SCRIPT_ESCAPED
            pos = found.end()
    return -1


def _is_our_script(attributes: bytes) -> bool:
    """Whether a script tag's `src` (the first one: browsers drop repeats) is the widget."""
    for attribute in _ATTRIBUTE.finditer(attributes):
        if attribute.group(1).lower() == b"src":
            value = attribute.group(2) or b""
            if value[:1] in (b'"', b"'"):
                value = value[1:-1]
            return _OUR_SCRIPT.match(value) is not None
    return False


def insert_at(page: bytes, at: int, tags: bytes) -> bytes:
    # memoryview slices are views: the page's bytes are copied once, by the join.
    view = memoryview(page)
    return b"".join((view[:at], tags, view[at:]))
