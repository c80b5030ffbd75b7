"""What the server relies on inside strawberry, graphql-core and aiosmtplib beyond their
documented API.

Each of these is pinned in pyproject.toml (strawberry-graphql, graphql-core and aiosmtplib, one
release series each). An upgrade may move any of them without notice; these tests then fail and say
which file relies on what, instead of a cache or a memory fix silently doing nothing. Raise a
pin only with this file passing. No server: they run in well under a second.
"""

import importlib
import inspect
import tomllib
from collections.abc import Callable
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiosmtplib
import graphql
import pytest
import strawberry
from packaging.requirements import Requirement
from strawberry.extensions import parser_cache
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql_schema.execution import Executor
from graphql_schema.profiles.types import ProfileInput
from graphql_schema.schema import build_schema
from server.graphql_app import GraphQLApp

ROOT = Path(__file__).resolve().parents[2]
PINNED = ("strawberry-graphql", "graphql-core", "aiosmtplib")


def moved(what: str, used_in: str, detail: str) -> str:
    return (
        f"{what} has moved or changed ({detail}). {used_in} relies on it: adapt that code to the"
        " new release, or keep the pin in pyproject.toml."
    )


@cache
def pins() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    return {r.name: r for r in requirements}


@pytest.mark.parametrize("package", PINNED)
def test_the_installed_release_is_one_the_pin_allows(package: str) -> None:
    pin = pins().get(package)
    assert pin is not None, f"pyproject.toml must pin {package}: its internals are used"
    installed = version(package)
    assert pin.specifier.contains(installed), (
        f"{package} {installed} is installed, outside the pin {pin}: run this file's tests"
        " against it before changing the pin"
    )
    assert not pin.specifier.contains("999"), f"{package}'s pin needs an upper bound"


def test_strawberry_parse_cache_is_one_shared_lru_of_graphql_parse() -> None:
    used_in = "graphql_schema/caches.py (LimitedCachedDocuments.on_parse)"
    get = getattr(parser_cache, "_get_parse_cache", None)
    assert callable(get), moved("strawberry's _get_parse_cache", used_in, "not found")
    parse = get(7)
    assert get(7) is parse, moved("_get_parse_cache", used_in, "no longer one LRU per size")
    parse.cache_clear()
    document = parse("{ a }", max_tokens=10)
    assert isinstance(document, graphql.DocumentNode)
    assert parse("{ a }", max_tokens=10) is document
    assert parse.cache_info().hits == 1, moved("_get_parse_cache", used_in, "does not cache")
    with pytest.raises(graphql.GraphQLError, match="more than 3 tokens"):
        parse("{ a b c d e f }", max_tokens=3)


def test_strawberry_builds_an_input_through_its_definitions_from_input() -> None:
    """graphql_schema/plain_inputs.py gives ProfileInput a `from_input` hook; were strawberry
    to stop calling it, the import would silently convert field by field again."""
    used_in = "graphql_schema/plain_inputs.py"
    converter = importlib.import_module("strawberry.types.arguments")
    definition = ProfileInput.__strawberry_definition__  # type: ignore[attr-defined]
    hook, built = definition.from_input, object()
    definition.from_input = lambda *_args: built
    try:
        schema = build_schema()
        value = converter.convert_argument(
            {"email": "a@b.c"}, ProfileInput, schema.schema_converter.scalar_registry, schema.config
        )
    finally:
        definition.from_input = hook
    assert value is built, moved("StrawberryObjectDefinition.from_input", used_in, "not called")


def test_aiosmtplib_offers_what_pipelining_uses() -> None:
    """server/mta/pipelining.py stands in for aiosmtplib's protocol on the transport during a
    pipelined group, and sends the body as aiosmtplib's DATA would."""
    used_in = "server/mta/pipelining.py"
    protocol = importlib.import_module("aiosmtplib.protocol")
    for name in ("MAX_LINE_LENGTH", "MAX_RESPONSE_LENGTH", "PERIOD_REGEX", "SMTPProtocol"):
        assert hasattr(protocol, name), moved(f"aiosmtplib.protocol.{name}", used_in, "gone")
    normalize = getattr(protocol, "normalize_message_line_endings", None)
    assert callable(normalize), moved("normalize_message_line_endings", used_in, "gone")
    assert normalize(b"a\nb\r\n") == b"a\r\nb\r\n"
    assert protocol.PERIOD_REGEX.sub(b"..", b".a\r\n.b\r\n") == b"..a\r\n..b\r\n"
    client = aiosmtplib.SMTP()
    assert client.protocol is None, moved("SMTP.protocol", used_in, "not None before connect")
    for name in ("write", "eof_received", "connection_lost", "pause_writing", "resume_writing"):
        assert callable(getattr(protocol.SMTPProtocol, name, None)), moved(
            f"SMTPProtocol.{name}", used_in, "gone"
        )


def test_graphql_core_validation_offers_what_graphql_schema_validation_uses() -> None:
    used_in = "graphql_schema/validation.py"
    core_validate = importlib.import_module("graphql.validation.validate")
    validation_context = importlib.import_module("graphql.validation.validation_context")

    for name in ("FragmentNestingVisitor", "ValidationAbortedError"):
        assert hasattr(core_validate, name), moved(f"graphql-core's {name}", used_in, "not found")
    keys = getattr(core_validate, "query_document_keys_to_validate", None)
    assert isinstance(keys, dict), moved("query_document_keys_to_validate", used_in, "not found")
    usage = validation_context.VariableUsage
    assert usage._fields == (
        "node",
        "type",
        "parent_type",
        "default_value",
        "fragment_variable_definition",
    ), moved("VariableUsage", used_in, "has other fields")
    context = graphql.ValidationContext(
        graphql.build_schema("type Query { a: Int }"),
        graphql.parse("{ a }"),
        graphql.TypeInfo(graphql.build_schema("type Query { a: Int }")),
        lambda _error: None,
    )
    for name in ("_fragment_spreads", "_variable_usages", "_recursive_variable_usages"):
        assert isinstance(getattr(context, name, None), dict), moved(
            f"ValidationContext.{name}", used_in, "no longer a dict the context fills"
        )
    for rule in (
        graphql.NoUndefinedVariablesRule,
        graphql.NoUnusedVariablesRule,
        graphql.VariablesInAllowedPositionRule,
    ):
        assert hasattr(rule, "enter_operation_definition"), moved(
            f"{rule.__name__}.enter_operation_definition", used_in, "not found"
        )


def test_graphql_core_memoises_sub_fields_where_per_event_memo_resets_them() -> None:
    used_in = "graphql_schema/execution.py (Executor.event_executor)"
    base = StrawberryGraphQLCoreExecutionContext
    assert "build_per_event_executor" in dir(base), moved(
        "graphql-core's ExecutionContext.build_per_event_executor", used_in, "not found"
    )
    sdl = "type Q { a: Int } type K { n: Int } type E { k: K } type S { e: E }"
    schema = graphql.build_schema(sdl + " schema { query: Q subscription: S }")
    document = graphql.parse("subscription { e { k { n } } }")

    def memo_after_one_event(context_class: Any) -> dict[Any, Any]:
        executor = context_class.build(schema, document)
        memo = getattr(executor, "_relevant_sub_fields", None)
        assert isinstance(memo, dict), moved(
            "graphql-core's ExecutionContext._relevant_sub_fields", used_in, "not a dict"
        )
        event = executor.build_per_event_executor({"e": {"k": {"n": 1}}})
        assert event.execute_operation(False).data == {"e": {"k": {"n": 1}}}
        return memo

    assert memo_after_one_event(base), moved(
        "graphql-core's sub-field memo", used_in, "_relevant_sub_fields is no longer filled"
    )
    assert memo_after_one_event(Executor) == {}


def strawberry_source() -> str:
    folder = Path(inspect.getfile(strawberry)).parent
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*.py")))


def hooks() -> dict[str, Callable[..., Any]]:
    """The methods server/graphql_app.py overrides (or calls) on strawberry's ASGI view."""
    own = {
        name: member
        for name, member in vars(GraphQLApp).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }
    return {**own, "run": GraphQLApp.run}


@pytest.mark.parametrize("name", sorted(hooks()))
def test_strawberry_still_calls_each_hook_of_the_graphql_app(name: str) -> None:
    used_in = f"server/graphql_app.py (GraphQLApp.{name})"
    inherited = [getattr(c, name) for c in GraphQLApp.__mro__[1:] if name in vars(c)]
    assert inherited, moved(f"strawberry's view method {name}", used_in, "not defined any more")
    ours = list(inspect.signature(hooks()[name]).parameters)
    theirs = list(inspect.signature(inherited[0]).parameters)
    assert ours == theirs, moved(f"{name}'s parameters", used_in, f"{theirs}, ours {ours}")
    assert f".{name}(" in strawberry_source(), moved(name, used_in, "strawberry never calls it")


def test_strawberry_origin_check_refuses_a_malformed_origin() -> None:
    used_in = "server/http/websocket_guard.py (websocket_origins)"
    module = importlib.import_module("strawberry.http.websocket_origin")
    normalize = getattr(module, "normalize_allowed_origins", None)
    assert callable(normalize), moved("strawberry's normalize_allowed_origins", used_in, "")
    normalize(["https://a.example", "*"])
    with pytest.raises(ValueError):
        normalize(["https://["])


def test_strawberry_streams_through_our_runner_and_its_stream_result_hooks() -> None:
    used_in = "graphql_schema/stream_hooks.py (StreamRunner)"
    source = inspect.getsource(strawberry.Schema.stream)
    assert "self.create_extensions_runner(" in source, moved(
        "strawberry.Schema.stream",
        used_in,
        "no longer builds its runner with create_extensions_runner",
    )
    context = importlib.import_module("strawberry.extensions.context")
    manager = context.StreamResultContextManager
    params = list(inspect.signature(manager.__init__).parameters)
    assert params == ["self", "extensions", "result"], moved(
        "StreamResultContextManager", used_in, f"takes {params}"
    )
    made = manager([], None)
    assert made.hooks == [] and made.result is None, moved(
        "StreamResultContextManager", used_in, "no `hooks` and `result` attributes"
    )
