"""E-mail templates: merchant-authored Jinja2, rendered in a sandbox and checked when saved.

Merchants write placeholders either as ``{SelfServicePortalUrl}`` / ``{customer.first_name}``
(single braces, the form the portal-link placeholder has always had) or as Jinja2
``{{ customer.first_name }}``; single-brace names are turned into Jinja2 expressions before
compiling (nothing else is rewritten, and line numbers stay the same).

What a template may do is deliberately small, so that rendering is always quick and bounded:
placeholders, ``{% if %}``/``{% elif %}``/``{% else %}``, comments, ``{% raw %}`` and a list of
harmless filters. Loops, assignments, macros, calls, includes and string formatting are refused
when the template is saved, as is any unknown placeholder or attribute, each with its line.
The HTML part is autoescaped (customer data cannot inject markup); the text part and subject
are not escaped (they are not HTML).

``{SelfServicePortalUrl}`` renders as a marker that the sender replaces with a freshly minted
portal link (only minted when the template really uses it). The link already carries
``?token=…``, so ``{SelfServicePortalUrl}?language=de`` is turned into ``…&language=de``.
"""
from __future__ import annotations

import dataclasses
import functools
import re
import secrets
import traceback

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

PORTAL_URL = "SelfServicePortalUrl"
KINDS = ("welcome", "invoice", "credit_note", "reminder", "cancellation", "portal_link")
LANGUAGES = ("en", "de", "fr")
PARTS = ("subject", "text", "html")
MAX_SOURCE = {"subject": 500, "text": 50_000, "html": 100_000}
MAX_STRING = 100_000

_SINGLE_BRACE = re.compile(
    r"(?<![{$])\{(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}(?!\})")

ALLOWED_FILTERS = frozenset({
    "abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int",
    "last", "length", "lower", "round", "string", "striptags", "title", "trim", "truncate",
    "upper", "urlencode",
})
REFUSED_NODES: dict[type, str] = {
    nodes.For: "loops are not available in e-mail templates",
    nodes.Macro: "macros are not available in e-mail templates",
    nodes.CallBlock: "call blocks are not available in e-mail templates",
    nodes.Call: "calling functions or methods is not available in e-mail templates",
    nodes.Include: "includes are not available in e-mail templates",
    nodes.Import: "imports are not available in e-mail templates",
    nodes.FromImport: "imports are not available in e-mail templates",
    nodes.Extends: "extends is not available in e-mail templates",
    nodes.Block: "blocks are not available in e-mail templates",
    nodes.Assign: "set is not available in e-mail templates",
    nodes.AssignBlock: "set is not available in e-mail templates",
    nodes.With: "with is not available in e-mail templates",
    nodes.Mod: "the % operator is not available in e-mail templates",
    nodes.Pow: "the ** operator is not available in e-mail templates",
}


class _Sandbox(SandboxedEnvironment):
    """No globals, a short list of filters, and size checks on ``*``/``+``."""

    intercepted_binops = frozenset({"*", "+"})

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.globals.clear()
        self.filters = {name: f for name, f in self.filters.items() if name in ALLOWED_FILTERS}
        self.tests = {name: self.tests[name] for name in (
            "defined", "undefined", "none", "number", "string", "eq", "ne", "lt", "le", "gt",
            "ge", "equalto", "in", "true", "false") if name in self.tests}

    def call_binop(self, context, operator, left, right):
        if operator == "*":
            for a, b in ((left, right), (right, left)):
                if isinstance(a, str | list | tuple) and isinstance(b, int) and \
                        len(a) * max(b, 0) > MAX_STRING:
                    raise SecurityError("the result would be too long")
            return left * right
        if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple) and \
                len(left) + len(right) > MAX_STRING:
            raise SecurityError("the result would be too long")
        return left + right

    def call(__self, __context, __obj, *args, **kwargs):  # jinja's own signature
        raise SecurityError("calling functions or methods is not available")


_html_env = _Sandbox(autoescape=True, undefined=Undefined, keep_trailing_newline=True)
_text_env = _Sandbox(autoescape=False, undefined=Undefined, keep_trailing_newline=True)
_strict_html_env = _Sandbox(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
_strict_text_env = _Sandbox(autoescape=False, undefined=StrictUndefined,
                            keep_trailing_newline=True)


def to_jinja(source: str) -> str:
    """``{SelfServicePortalUrl}`` → ``{{ SelfServicePortalUrl }}``; Jinja2 syntax untouched."""
    return _SINGLE_BRACE.sub(lambda m: "{{ " + m.group("name") + " }}", source)


@dataclasses.dataclass
class Problem:
    part: str
    line: int | None
    message: str

    def as_field_error(self) -> dict:
        where = f"line {self.line}: " if self.line else ""
        return {"code": "template_error", "message": where + self.message,
                "params": {"line": self.line}}


def _template_line(exc: BaseException) -> int | None:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == "<template>":
            return frame.lineno
    return getattr(exc, "lineno", None)


def _check_tree(part: str, tree: nodes.Template, allowed: set[str]) -> Problem | None:
    for node in tree.find_all(nodes.Node):
        for node_type, message in REFUSED_NODES.items():
            if isinstance(node, node_type):
                return Problem(part, node.lineno, message)
        if isinstance(node, nodes.Filter | nodes.FilterBlock):
            name = node.name if isinstance(node, nodes.Filter) else node.filter.name
            if name not in ALLOWED_FILTERS:
                return Problem(part, node.lineno, f"unknown filter {name!r}")
        if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in allowed:
            return Problem(part, node.lineno, f"unknown placeholder {node.name!r}")
    return None


def validate(parts: dict[str, str], sample: dict) -> list[Problem]:
    """Every problem of a template (at most one per part), each with its line."""
    problems = []
    for part in PARTS:
        source = parts.get(part)
        if not isinstance(source, str) or not source.strip():
            problems.append(Problem(part, None, "this part may not be empty"))
            continue
        if len(source) > MAX_SOURCE[part]:
            problems.append(Problem(part, None, f"longer than {MAX_SOURCE[part]} characters"))
            continue
        env = _strict_html_env if part == "html" else _strict_text_env
        jinja_source = to_jinja(source)
        try:
            tree = env.parse(jinja_source)
        except TemplateSyntaxError as exc:
            problems.append(Problem(part, exc.lineno, exc.message or "syntax error"))
            continue
        problem = _check_tree(part, tree, set(sample))
        if problem:
            problems.append(problem)
            continue
        try:
            env.from_string(jinja_source).render(sample)
        except (UndefinedError, SecurityError) as exc:
            message = str(exc).replace("'dict object' has no attribute", "unknown placeholder")
            problems.append(Problem(part, _template_line(exc), message))
        except (TemplateError, ArithmeticError, TypeError, ValueError) as exc:
            problems.append(Problem(part, _template_line(exc), str(exc) or type(exc).__name__))
    return problems


@dataclasses.dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    marker: str

    @property
    def uses_portal_url(self) -> bool:
        return self.marker in self.subject or self.marker in self.text or self.marker in self.html

    def with_portal_url(self, url: str) -> Rendered:
        """Replace the marker; a ``?`` right after it continues the link's own query string."""
        def fill(value: str, link: str, ampersand: str) -> str:
            return value.replace(self.marker + "?", link + ampersand).replace(self.marker, link)

        return Rendered(fill(self.subject, url, "&"), fill(self.text, url, "&"),
                        fill(self.html, str(escape(url)), "&amp;"), self.marker)


@functools.lru_cache(maxsize=1024)
def _compiled(source: str, html: bool):
    """Compiling costs milliseconds; the same few templates render thousands of times."""
    return (_html_env if html else _text_env).from_string(to_jinja(source))


def render(parts: dict[str, str], context: dict) -> Rendered:
    """Render a (validated) template; ``SelfServicePortalUrl`` becomes a marker to fill."""
    marker = "PorticoPortalUrl" + secrets.token_hex(8)
    values = {**context, PORTAL_URL: marker}
    subject = _compiled(parts["subject"], False).render(values)
    subject = " ".join(subject.split())[:300]  # one line: never a header injection
    text = _compiled(parts["text"], False).render(values)
    html = _compiled(parts["html"], True).render(values)
    return Rendered(subject, text, html, marker)
