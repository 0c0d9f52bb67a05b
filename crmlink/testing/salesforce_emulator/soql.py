"""A SOQL subset: tokenizer and recursive-descent parser producing a small AST.

Supported: ``SELECT f1, Rel.f2 | COUNT() FROM Obj [WHERE cond] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], ...] [LIMIT n]`` with AND/OR/NOT/parentheses, = != <> < <= > >=,
[NOT] IN (...), LIKE, and string/number/true/false/null/date/datetime literals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError
from .values import parse_date, parse_datetime

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:\\.|[^'\\])*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\d:T]))
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<ident>[A-Za-z_][\w.]*(?::\d+)?)
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"',
            "\\": "\\"}
UNSUPPORTED = {"OFFSET", "GROUP", "HAVING", "USING", "WITH", "FOR", "TYPEOF", "UPDATE"}


@dataclass
class Token:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


@dataclass
class FieldRef:
    path: list[str]
    pos: int

    @property
    def text(self) -> str:
        return ".".join(self.path)


@dataclass
class Literal:
    kind: str  # string | number | boolean | null | date | datetime
    value: Any
    pos: int


@dataclass
class Comparison:
    field: FieldRef
    op: str  # = != < <= > >= IN NOT IN LIKE
    value: Literal | list[Literal]


@dataclass
class BoolOp:
    op: str  # AND | OR
    parts: list[Any]


@dataclass
class Not:
    part: Any


@dataclass
class OrderItem:
    field: FieldRef
    descending: bool = False
    nulls_last: bool = False


@dataclass
class Query:
    text: str
    sobject: str
    sobject_pos: int
    fields: list[FieldRef] = field(default_factory=list)
    count: bool = False
    where: Any = None
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None


def malformed(text: str, pos: int, message: str) -> ApiError:
    return ApiError(400, "MALFORMED_QUERY", locate(text, pos, message))


def locate(text: str, pos: int, message: str) -> str:
    """Salesforce's error layout: the query line, a caret, Row/Column, then the message."""
    before = text[:pos]
    row = before.count("\n") + 1
    col = pos - (before.rfind("\n") + 1)
    line = text.splitlines()[row - 1] if text.strip() else text
    return f"\n{line}\n{' ' * col}^\nERROR at Row:{row}:Column:{col + 1}\n{message}"


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise malformed(text, pos, f"unexpected token: '{text[pos:pos + 10].split()[0]}'")
        if m.lastgroup != "ws":
            tokens.append(Token(m.lastgroup or "", m.group(), pos))
        pos = m.end()
    return tokens


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # ---- token helpers --------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def at(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.upper in words

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise malformed(self.text, len(self.text), "unexpected end of query")
        self.i += 1
        return tok

    def expect(self, word: str) -> Token:
        tok = self.peek()
        if tok is None or tok.upper != word:
            where = tok.pos if tok else len(self.text)
            found = tok.text if tok else "<EOF>"
            raise malformed(self.text, where, f"unexpected token: '{found}'")
        return self.take()

    # ---- grammar ----------------------------------------------------------------------------
    def parse(self) -> Query:
        self.expect("SELECT")
        fields, count = self.select_list()
        self.expect("FROM")
        obj = self.take()
        if obj.kind != "ident":
            raise malformed(self.text, obj.pos, f"unexpected token: '{obj.text}'")
        query = Query(self.text, obj.text, obj.pos, fields, count)
        if self.at("WHERE"):
            self.take()
            query.where = self.condition()
        if self.at("ORDER"):
            self.take()
            self.expect("BY")
            query.order = self.order_list()
        if self.at("LIMIT"):
            self.take()
            tok = self.take()
            if tok.kind != "number" or not tok.text.isdigit():
                raise malformed(self.text, tok.pos, f"unexpected token: '{tok.text}'")
            query.limit = int(tok.text)
        rest = self.peek()
        if rest is not None:
            raise malformed(self.text, rest.pos, f"unexpected token: '{rest.text}'"
                            if rest.upper not in UNSUPPORTED
                            else f"{rest.upper} is not supported by the crmlink emulator")
        return query

    def select_list(self) -> tuple[list[FieldRef], bool]:
        following = self.peek(1)
        if self.at("COUNT") and following is not None and following.text == "(":
            self.take(), self.take()
            self.expect(")")
            return [], True
        fields = [self.field_ref()]
        while self.at(","):
            self.take()
            fields.append(self.field_ref())
        return fields, False

    def field_ref(self) -> FieldRef:
        tok = self.take()
        nxt = self.peek()
        if tok.kind != "ident" or tok.upper in ("FROM", "SELECT"):
            raise malformed(self.text, tok.pos, f"unexpected token: '{tok.text}'")
        if nxt is not None and nxt.text == "(":
            raise malformed(self.text, tok.pos, f"{tok.text}() is not supported by the crmlink "
                            "emulator (no aggregates, FIELDS() or subqueries)")
        return FieldRef(tok.text.split("."), tok.pos)

    def order_list(self) -> list[OrderItem]:
        items = [self.order_item()]
        while self.at(","):
            self.take()
            items.append(self.order_item())
        return items

    def order_item(self) -> OrderItem:
        item = OrderItem(self.field_ref())
        if self.at("ASC", "DESC"):
            item.descending = self.take().upper == "DESC"
        item.nulls_last = item.descending
        if self.at("NULLS"):
            self.take()
            item.nulls_last = self.take().upper == "LAST"
        return item

    def condition(self) -> Any:
        parts = [self.conjunction()]
        while self.at("OR"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else BoolOp("OR", parts)

    def conjunction(self) -> Any:
        parts = [self.factor()]
        while self.at("AND"):
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else BoolOp("AND", parts)

    def factor(self) -> Any:
        if self.at("NOT"):
            self.take()
            return Not(self.factor())
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.take()
            inner = self.condition()
            self.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        ref = self.field_ref()
        tok = self.take()
        if tok.kind == "op":
            op = "!=" if tok.text == "<>" else tok.text
            return Comparison(ref, op, self.literal())
        if tok.upper == "LIKE":
            return Comparison(ref, "LIKE", self.literal())
        if tok.upper == "NOT" and self.at("IN"):
            self.take()
            return Comparison(ref, "NOT IN", self.literal_list())
        if tok.upper == "IN":
            return Comparison(ref, "IN", self.literal_list())
        raise malformed(self.text, tok.pos, f"unexpected token: '{tok.text}'")

    def literal_list(self) -> list[Literal]:
        self.expect("(")
        if self.at("SELECT"):
            raise malformed(self.text, self.expect("SELECT").pos,
                            "semi-join subqueries are not supported by the crmlink emulator")
        values = [self.literal()]
        while self.at(","):
            self.take()
            values.append(self.literal())
        self.expect(")")
        return values

    def literal(self) -> Literal:
        tok = self.take()
        return to_literal(self.text, tok)


def to_literal(text: str, tok: Token) -> Literal:
    if tok.kind == "string":
        return Literal("string", _unquote(tok.text[1:-1]), tok.pos)
    if tok.kind == "number":
        num = float(tok.text)
        return Literal("number", int(num) if num.is_integer() and "." not in tok.text else num,
                       tok.pos)
    if tok.kind == "datetime":
        return Literal("datetime", parse_datetime(tok.text), tok.pos)
    if tok.kind == "date":
        return Literal("date", parse_date(tok.text), tok.pos)
    if tok.upper in ("TRUE", "FALSE"):
        return Literal("boolean", tok.upper == "TRUE", tok.pos)
    if tok.upper == "NULL":
        return Literal("null", None, tok.pos)
    raise malformed(text, tok.pos, f"unexpected token: '{tok.text}'")


def _unquote(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))  # \% and \_ stay escaped for LIKE
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse(text: str) -> Query:
    if not text or not text.strip():
        raise ApiError(400, "MALFORMED_QUERY", "unexpected token: <EOF>")
    return Parser(text).parse()
