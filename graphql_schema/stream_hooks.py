"""strawberry's extension runner, with what it works out for every result of a stream worked
out once per operation.

A subscription's every result goes through `on_stream_result` and `get_extensions_results`.
strawberry builds the `on_stream_result` hooks anew for each result (a look-up per extension,
`contextlib.contextmanager` wrapping with `functools.wraps`, an exit stack) and awaits every
extension's `get_results`: about 11 us a result with our two extensions, so 11 ms of CPU for a
snapshot sent to 1,000 subscribers (bench/fanout.py), a tenth of the whole fan-out. Here:
- the hooks are found once per operation (its extensions are fixed);
- a hook whose extension says it only acts on errors (`STREAM_HOOK_ON_ERRORS_ONLY`, ErrorCodes)
  is not entered for a result without errors, so a snapshot's result enters none;
- only the extensions that override `get_results` are asked for theirs (ours never do).
Results with errors, and every other hook, go through strawberry's own code as before.
"""

from types import TracebackType
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import StreamResultContextManager, WrappedHook
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext
from strawberry.types.execution import StreamExecutionResult
from strawberry.utils.await_maybe import await_maybe

# An extension whose class sets this to True acts in `on_stream_result` only on a result with
# errors (it must then do nothing at all for a result without).
STREAM_HOOK_ON_ERRORS_ONLY = "stream_hook_on_errors_only"


class _Nothing:
    """The context manager of a result that no hook needs to see."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        return None


NOTHING = _Nothing()


class _KnownHooks(StreamResultContextManager):
    """strawberry's context manager (its exit stack and error handling), over hooks found
    before."""

    def __init__(self, hooks: list[WrappedHook], result: StreamExecutionResult) -> None:
        self.hooks, self.result = hooks, result


class StreamRunner(SchemaExtensionsRunner):
    def __init__(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None
    ) -> None:
        super().__init__(execution_context, extensions)
        self._hooks: tuple[list[WrappedHook], list[WrappedHook]] | None = None
        self._with_results = [
            e for e in self.extensions if type(e).get_results is not SchemaExtension.get_results
        ]

    def on_stream_result(self, result: StreamExecutionResult) -> Any:
        if self._hooks is None:
            every = StreamResultContextManager(self.extensions, result).hooks
            always = [
                h for h in every if not getattr(h.extension, STREAM_HOOK_ON_ERRORS_ONLY, False)
            ]
            self._hooks = (every, always)
        every, always = self._hooks
        hooks = every if getattr(result, "errors", None) else always
        if not hooks:
            return NOTHING
        return _KnownHooks(hooks, result)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self._with_results:
            data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data
