"""A body's links are read once, by models/links.py, for preparation, the rewrite and the redirect
(SPEC §3, §7; docs/tracking.md#which-links-are-tracked).

These tests need no server: for bodies that trip up a hand-written reader (data-href,
comments, CDATA, <script>/<style>, upper case, entities, unquoted values, two hrefs) they check
that validation, the MIME message each recipient gets and the redirect's lookup see the same
links with the same numbers. tests/api/tracking/test_links.py does it end to end: a real server
relays a body over SMTP, and each tracking URL found in the received messages is clicked.
"""

import ast
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.enums import Channel
from models.links import LinkKind, anchors, kind_of, tracked
from models.preparation import check_content
from models.relay import Claimed
from models.template import FIELDS, UNSUBSCRIBE_FIELD, compile_html, links_of, render
from models.tracking import TokenKind, read_token
from server.mta.compose import Composer
from tests.support.tracking import parts

ROOT = Path(__file__).resolve().parents[2]
KEY = "k" * 32
BASE = "https://track.example"

# (body, the tracked links in order). Every body here passes preparation's checks.
TRICKY: list[tuple[str, list[str]]] = [
    (  # data-href is another attribute: href decides
        '<a data-href="https://a.example" href="https://b.example">x</a>',
        ["https://b.example"],
    ),
    (  # a commented-out link is no link at all
        '<!-- <a href="https://old.example">x</a> --><a href="https://new.example">y</a>',
        ["https://new.example"],
    ),
    (  # nor one in a CDATA section, a script or a style sheet
        '<![CDATA[<a href="https://cdata.example">]]>'
        "<script>document.write('<a href=\"https://script.example\">')</script>"
        '<style>a[href="https://style.example"] { color: red }</style>'
        '<a href="https://real.example">r</a>',
        ["https://real.example"],
    ),
    (  # upper case, an unquoted value, entities decoded
        "<A HREF=https://up.example/?a=1&amp;b=2>u</A>",
        ["https://up.example/?a=1&b=2"],
    ),
    (  # single quotes, spaces around '=', a value padded with spaces, a tag over lines
        "<a class=c\n  href = '  https://sq.example/p#top  '\n>s</a>",
        ["https://sq.example/p#top"],
    ),
    (  # of two hrefs the first counts, as in a browser
        '<a href="https://first.example" href="https://second.example">d</a>',
        ["https://first.example"],
    ),
    (  # not tracked: a named anchor, mailto, the unsubscribe field; fields inside a link are
        '<a name="top">n</a><a href="mailto:help@shop.example">m</a>'
        '<a href="{{ unsubscribeUrl }}">Unsubscribe</a>'
        '<a href="https://f.example/?who={{firstName}}&amp;e={{email}}" title="{{firstName}}"/>',
        ["https://f.example/?who={{firstName}}&e={{email}}"],
    ),
    (  # a '>' inside a quoted value does not end the tag
        '<a title="1 > 0" href="https://gt.example">g</a><a href="https://two.example">h</a>',
        ["https://gt.example", "https://two.example"],
    ),
]
# Spellings of links that run code: a preparation error, never a Link.
FORBIDDEN = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "  javascript:alert(1)",
    "java&#x09;script:alert(1)",  # a tab, which URL parsers drop
    "java\nscript:alert(1)",
    "&#106;avascript:alert(1)",
    "&#x01;javascript:alert(1)",  # a leading control character
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
]


def message_for(body: str, values: dict[str, str | None]) -> EmailMessage:
    """The MIME message the SMTP adapter sends for this body (delivery 7, log 11)."""
    composer = Composer(BASE, KEY, "Shop <shop@example.org>")
    compiled = composer.compiled(7, "Hello", body)
    claimed = Claimed(log_id=11, address="ann@example.com", profile_id=3, message_id="m-11")
    raw = composer.message(compiled, 7, claimed, values)
    return cast(EmailMessage, email.message_from_bytes(raw, policy=email.policy.default))


def click_numbers(urls: list[str]) -> list[int]:
    """The link number each click URL of a message carries (its signature checked)."""
    numbers = []
    for url in urls:
        token = read_token(KEY, TokenKind.CLICK, url.removeprefix(f"{BASE}/t/c/"))
        assert token is not None and token.link is not None, url
        numbers.append(token.link)
    return numbers


@pytest.mark.parametrize(("body", "expected"), TRICKY)
def test_validation_rewrite_and_redirect_see_the_same_links(body: str, expected: list[str]) -> None:
    # Preparation: no error, every link it reads is of a kind it accepts.
    assert check_content(Channel.EMAIL, "Hello", body)[0] == []
    assert [a.url for a in tracked(anchors(body))] == expected
    # The redirect looks a click's number up in this list.
    assert links_of(body) == expected
    # The message: each tracked link became a click URL carrying its number, in order, in the
    # HTML part and in the text part; nothing else of the body is a click URL.
    html, text = parts(message_for(body, {"firstName": "Ann", "email": "ann@example.com"}))
    clicks = [a.url for a in anchors(html) if a.url.startswith(f"{BASE}/t/c/")]
    assert click_numbers(clicks) == list(range(len(expected)))
    others = [a.url for a in anchors(html) if a.url not in clicks]  # left to the recipient
    assert all(u.startswith(("mailto:", f"{BASE}/u/")) for u in others), others
    for url in clicks:
        assert text.count(url) == 1
    for url in expected:
        assert f'"{url}"' not in html  # no tracked link is left as it was


def test_links_the_parser_does_not_see_are_left_as_written() -> None:
    body = TRICKY[1][0] + TRICKY[2][0]
    html, _ = parts(message_for(body, {}))
    for hidden in (
        '<!-- <a href="https://old.example">x</a> -->',
        '<![CDATA[<a href="https://cdata.example">]]>',
        "<script>document.write('<a href=\"https://script.example\">')</script>",
        '<style>a[href="https://style.example"] { color: red }</style>',
    ):
        assert hidden in html


@pytest.mark.parametrize("href", FORBIDDEN)
def test_script_links_are_a_preparation_error_and_never_a_tracked_link(href: str) -> None:
    body = f'<a href="{href}">x</a><a href="https://ok.example/unsubscribe">Unsubscribe</a>'
    errors, _ = check_content(Channel.EMAIL, "Hello", body)
    assert len(errors) == 1 and "is not allowed" in errors[0], errors
    (first, _) = anchors(body)
    assert first.kind is LinkKind.FORBIDDEN
    assert links_of(body) == ["https://ok.example/unsubscribe"]
    assert [link.url for link in compile_html(body).links] == links_of(body)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://a.example/x?y=1#z", LinkKind.TRACKED),
        ("HTTP://A.EXAMPLE", LinkKind.TRACKED),
        ("https://", LinkKind.INVALID),
        ("https://a.example/with space", LinkKind.INVALID),
        ("https://[::1", LinkKind.INVALID),
        ("/relative", LinkKind.INVALID),
        ("", LinkKind.INVALID),
        ("ftp://a.example", LinkKind.INVALID),
        ("mailto:help@shop.example", LinkKind.MAILTO),
        ("mailto:nobody", LinkKind.INVALID),
        ("{{unsubscribeUrl}}", LinkKind.UNSUBSCRIBE),
        ("{{firstName}}", LinkKind.INVALID),
        ("javascript:x", LinkKind.FORBIDDEN),
        ("DATA:x", LinkKind.FORBIDDEN),
        ("vbscript:x", LinkKind.FORBIDDEN),
    ],
)
def test_each_url_has_one_kind(url: str, kind: LinkKind) -> None:
    assert kind_of(url) is kind


def test_a_commented_out_script_link_is_neither_an_error_nor_a_link() -> None:
    body = (
        '<!-- <a href="javascript:alert(1)">x</a> --><a href="https://a.example/unsubscribe">u</a>'
    )
    assert check_content(Channel.EMAIL, "Hello", body) == ([], [])
    assert links_of(body) == ["https://a.example/unsubscribe"]


# Fragments a body may be made of: tags, text, comments, script, broken markup.
FRAGMENT = st.sampled_from(
    [
        '<a href="https://a.example/1">one</a>',
        "<A HREF=https://b.example/2?x=1&amp;y=2>two</A>",
        "<a href='{{unsubscribeUrl}}'>u</a>",
        '<a data-href="https://c.example" href="mailto:x@y.example">m</a>',
        '<a title="{{firstName}} > 1"\nhref="https://d.example/{{email}}">d</a>',
        '<a href="https://e.example" href="https://f.example"/>',
        '<a name="n">',
        "<!-- <a href='https://hidden.example'> -->",
        "<script>'<a href=\"https://s.example\">'</script>",
        "<p>Hello {{firstName}}</p>\n",
        "text & more < less",
        "</a>",
        "<a",
        "<br/>",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENT, max_size=12).map("".join))
def test_any_body_rewrites_each_tracked_start_tag_and_nothing_else(body: str) -> None:
    found = anchors(body)
    for anchor in found:  # each span is the start tag as written
        assert body[anchor.start : anchor.end].lower().startswith("<a")
        assert body[anchor.start : anchor.end].endswith(">")
    # Rendered with each link's own URL and each field as itself, the body has the same links.
    same = {name: "{{" + name + "}}" for name in [*FIELDS, UNSUBSCRIBE_FIELD]}
    again = render(compile_html(body), same, link=lambda link: link.url, escape=lambda v: v)
    assert [(a.url, a.kind) for a in anchors(again)] == [(a.url, a.kind) for a in found]
    assert links_of(again) == links_of(body) == [a.url for a in tracked(found)]


def test_no_other_module_reads_a_body_s_links() -> None:
    """The drift guard: hrefs are read in models/links.py only (the compose text writer takes
    them from its `href_of`), and only it and that writer subclass HTMLParser."""
    allowed_parsers = {"models/links.py", "models/compose.py"}
    wrong = []
    for package in ("models", "graphql_schema", "server"):
        for path in (ROOT / package).rglob("*.py"):
            name = str(path.relative_to(ROOT))
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                and node.body
                and isinstance(node.body[0], ast.Expr)
                and isinstance(node.body[0].value, ast.Constant)
            }
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and "href" in node.value.lower()
                    and id(node) not in docstrings
                    and name != "models/links.py"
                ):
                    wrong.append(f"{name}:{node.lineno} mentions href: {node.value[:40]!r}")
                if isinstance(node, ast.ClassDef) and name not in allowed_parsers:
                    bases = [ast.unparse(b) for b in node.bases]
                    if any("HTMLParser" in b for b in bases):
                        wrong.append(f"{name}:{node.lineno} parses HTML ({node.name})")
    assert not wrong, "links read outside models/links.py:\n" + "\n".join(wrong)
