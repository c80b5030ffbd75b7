"""`python -m graphql_schema.export [--check]`: write (or check) the committed schema.graphql."""

import sys
from pathlib import Path

from strawberry.printer import print_schema

from graphql_schema.schema import schema

PATH = Path(__file__).with_name("schema.graphql")


def main(argv: list[str]) -> int:
    sdl = print_schema(schema) + "\n"
    if "--check" in argv:
        if not PATH.exists() or PATH.read_text() != sdl:
            print(f"{PATH} is stale: run python -m graphql_schema.export", file=sys.stderr)
            return 1
        print(f"{PATH.name} is up to date")
        return 0
    PATH.write_text(sdl)
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
