"""The scanner of `ccc_gateway.softphone.page_scan.scan_page` as first written (commit d125eab),
kept as the oracle that the faster one in the product is checked against (test_inject.py).

Test-only: the product has one implementation. This copy is correct (the Chromium
differential test and the hostile page table were run against it) but slow: one
case-insensitive pattern with a negative lookahead over every watched tag name per tag.
"""

from __future__ import annotations

import re
from typing import NamedTuple

WIDGET_SCRIPT = "/aliyun/softphone/widget.js"

# A reading of the HTML tokenizer (HTML Living Standard §13.2.5) over bytes, enough to tell
# where the tokenizer is in its data state: between tags, outside comments and the elements
# whose content is text (RAWTEXT, RCDATA, script data with its escapes). The tree builder
# decides some of that (which start tags switch the tokenizer); where this reading could
# differ from a browser's (SVG/MathML content, `<select>`), the scan stops and trusts only
# what it found before. Measured (CPU time) on a 20 KB CRM-like page of 1,300 tags, with an
# inline SVG icon and a <select> per table row: 0.5-0.7 ms. `html.parser` (Python 3.11) took
# 3.2 ms for the same page, gives no byte offsets, and knows neither the RCDATA elements
# (textarea, title) nor script escapes, so it is not used.

# An attribute: a name, then either `=` and a value (which must end: a quote left open runs
# to the end of the page) or no `=` at all.
_ATTRIBUTE_PATTERN = (
    rb"([^\t\n\f\r />][^\t\n\f\r />=]*+)"
    rb"(?>[\t\n\f\r ]*+=[\t\n\f\r ]*+(\"[^\"]*+\"|'[^']*+'|(?![\"'])[^\t\n\f\r >]*+)"
    rb"|(?![\t\n\f\r ]*+=))"
)
_ATTRIBUTE = re.compile(_ATTRIBUTE_PATTERN)
# A start or end tag from `<` to `>`: its name, its attributes (quoted values may hold `>`),
# and a `/` right before `>`. Possessive quantifiers: an unterminated tag fails in linear time.
_ATTRIBUTES_PATTERN = rb"(?:[\t\n\f\r ]++|/(?!>)|" + _ATTRIBUTE_PATTERN + rb")*+"
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
_TEXT_END = {
    name: re.compile(rb"</" + name + rb"[\t\n\f\r />]", re.IGNORECASE) for name in _TEXT_ELEMENTS
}
# The names `scan_page` acts on outside SVG/MathML; every other tag leaves its state as it is.
_WATCHED = (
    b"script|style|xmp|iframe|noembed|noframes|noscript|textarea|title|plaintext|frameset"
    b"|svg|math|template|select|input|keygen|head|body"
)
# A run of text, complete comments and tags of other names, in one match: most of a page's
# markup, skipped without a step of Python per tag (that was five times slower).
_UNWATCHED = re.compile(
    rb"(?:[^<]++"
    rb"|<(?![A-Za-z!/?])"  # a `<` in text
    rb"|<!--(?>-?>|.*?--!?>)"  # a comment (`<!-->` and `<!--->` end at once)
    rb"|<!(?!--)[^>]*+>|<\?[^>]*+>|</(?![A-Za-z])[^>]*+>"  # doctype, bogus comments
    rb"|<(?!/?(?i:"
    + _WATCHED
    + rb")[\t\n\f\r />])/?[A-Za-z][^\t\n\f\r />]*+"
    + _ATTRIBUTES_PATTERN
    + rb"/?>)*+",
    re.DOTALL,
)
_SCRIPT_DATA = re.compile(rb"(<!--)|</script[\t\n\f\r />]", re.IGNORECASE)
_SCRIPT_ESCAPED = re.compile(rb"(-->)|(<script[\t\n\f\r />])|</script[\t\n\f\r />]", re.I)
_SCRIPT_DOUBLE_ESCAPED = re.compile(rb"(-->)|</script[\t\n\f\r />]", re.IGNORECASE)
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


def reference_scan_page(page: bytes) -> PageScan:
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
    pos = 0
    while True:
        if not foreign:
            pos = _UNWATCHED.match(page, pos).end()  # type: ignore[union-attr]  # it matches ""
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
                pos = _text_end(page, pos, name)
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


def _text_end(page: bytes, start: int, name: bytes) -> int:
    """The end of the end tag closing a text element whose content begins at `start`."""
    if name == b"script":
        at = _script_end(page, start)
    else:
        end = _TEXT_END[name].search(page, start)
        at = -1 if end is None else end.start()
    if at < 0:
        return -1
    tag = _TAG.match(page, at)  # an end tag may carry attributes, with `>` in quotes
    return -1 if tag is None else tag.end()


def _script_end(page: bytes, pos: int) -> int:
    """Where the `</script` ending a script's content is: script data, its escaped state
    (after `<!--`) and double-escaped state (after `<script` in there), HTML §13.2.5.4-.31."""
    state = _SCRIPT_DATA
    while (found := state.search(page, pos)) is not None:
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
