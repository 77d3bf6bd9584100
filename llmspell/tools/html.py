"""A tiny HTML DOM (stdlib html.parser) with simple CSS selectors, for the web tools."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_SKIP_TEXT = {"script", "style", "noscript", "template", "head"}


@dataclass
class Node:
    """An element: tag, attributes, children (Nodes or text strings)."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)
    parent: Node | None = None

    def text(self) -> str:
        parts: list[str] = []
        self._text(parts)
        return " ".join(" ".join(parts).split())

    def _text(self, parts: list[str]) -> None:
        if self.tag in _SKIP_TEXT:
            return
        for c in self.children:
            if isinstance(c, str):
                parts.append(c)
            else:
                c._text(parts)

    def iter(self) -> list[Node]:
        out: list[Node] = []
        stack: list[Node] = [self]
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(reversed([c for c in n.children if isinstance(c, Node)]))
        return out

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.cur = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.cur)
        self.cur.children.append(node)
        if tag not in _VOID:
            self.cur = node

    def handle_endtag(self, tag: str) -> None:
        n: Node | None = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data: str) -> None:
        self.cur.children.append(data)


def parse(html_text: str) -> Node:
    b = _Builder()
    b.feed(html_text)
    b.close()
    return b.root


_SIMPLE = re.compile(r"^(?P<tag>[a-zA-Z][\w-]*|\*)?(?P<rest>(?:[#.][\w-]+|\[[^\]]+\])*)$")


def _matches(n: Node, simple: str) -> bool:
    m = _SIMPLE.match(simple)
    if not m:
        raise ValueError(f"unsupported selector part '{simple}'")
    tag = m.group("tag")
    if tag and tag != "*" and n.tag != tag.lower():
        return False
    for part in re.findall(r"[#.][\w-]+|\[[^\]]+\]", m.group("rest")):
        if part[0] == "#" and n.attrs.get("id") != part[1:]:
            return False
        if part[0] == "." and part[1:] not in n.classes():
            return False
        if part[0] == "[":
            key, _, val = part[1:-1].partition("=")
            if key not in n.attrs or (val and n.attrs[key] != val.strip("\"'")):
                return False
    return True


def select(root: Node, selector: str) -> list[Node]:
    """Elements matching a selector list ('a, b'), each a descendant chain of simple selectors."""
    out: list[Node] = []
    for sel in selector.split(","):
        parts = sel.split()
        if not parts:
            continue
        for n in root.iter():
            if n.tag == "#document" or not _matches(n, parts[-1]):
                continue
            anc = n.parent
            ok = True
            for p in reversed(parts[:-1]):
                while anc is not None and not (anc.tag != "#document" and _matches(anc, p)):
                    anc = anc.parent
                if anc is None:
                    ok = False
                    break
                anc = anc.parent
            if ok and n not in out:
                out.append(n)
    return out
