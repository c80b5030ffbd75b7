"""Benchmark of building each recipient's email (server/mta/compose.py), this tree against another
commit, in the same run:

    .venv/bin/python bench/compose.py --against 9d77b6f
    .venv/bin/python bench/compose.py --against main --recipients 50000 --rounds 3

For each tree (the commit given is extracted with `git archive` to a temporary folder; the
other is this working tree) a child process imports that tree's code and times:
1. compiling a delivery's email (`compile_email`: links, fields, the text part), which happens
   once per delivery, for a short body and a 40 KB newsletter with 60 links;
2. building N recipients' MIME messages from the compiled email (`Composer.message`), which
   happens once per message and must not depend on how the body's links were read.
Times are the child's CPU time (time.process_time), so that other processes on a shared machine
count less than in wall-clock time. Rounds alternate between the trees and the fastest of each
is kept: compare the two trees' figures, not single values across runs.
"""

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBJECT = "Hello {{firstName}}"
SHORT = (
    "<html><body><h1>Hello {{firstName}}</h1>"
    '<p>Our <a href="https://example.com/offer">spring offer</a> is here, and the'
    ' <a href="https://example.com/news">news</a> too.</p>'
    '<p><a href="{{unsubscribeUrl}}">Unsubscribe</a></p></body></html>'
)
ARTICLE = (
    '<tr><td class="item"><h2 style="margin:0">Article {n} for {{{{firstName}}}}</h2>'
    '<p style="color:#333">Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do'
    " eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis"
    " nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.</p>"
    '<a class="btn" href="https://shop.example/a/{n}?utm_source=mail&amp;who={{{{email}}}}">'
    "Read more</a> <a href='https://shop.example/img/{n}'><img src='https://cdn.example/{n}.png'"
    ' alt="picture {n}"></a><!-- tracking note {n} --></td></tr>\n'
)
NEWSLETTER = (
    "<html><head><style>td.item { padding: 8px }</style></head><body><table>"
    + "".join(ARTICLE.format(n=n) for n in range(30))
    + '</table><p><a href="{{unsubscribeUrl}}">Unsubscribe</a></p></body></html>'
)


def child(recipients: int) -> dict[str, float]:
    """Runs in the tree under test (its code first on sys.path)."""
    from models.relay import Claimed
    from server.mta.compose import Composer, compile_email

    figures: dict[str, float] = {}
    for name, body, times in (("short", SHORT, 2000), ("newsletter", NEWSLETTER, 50)):
        start = time.process_time()
        for _ in range(times):
            compile_email(SUBJECT, body)
        figures[f"compile_{name}_ms"] = (time.process_time() - start) / times * 1000
    composer = Composer("https://track.example", "k" * 32, "Bench <bench@example.org>")
    for name, body in (("short", SHORT), ("newsletter", NEWSLETTER)):
        email = composer.compiled(1, SUBJECT, body)
        count = recipients if name == "short" else recipients // 10
        claims = [Claimed(i, f"user{i}@example.com", i, f"m{i}") for i in range(count)]
        values = {"firstName": "Ann", "lastName": "Lee", "email": "ann@example.com", "phone": None}
        start = time.process_time()
        for claimed in claims:
            composer.message(email, 1, claimed, values)
        figures[f"message_{name}_us"] = (time.process_time() - start) / count * 1e6
    return figures


def run_tree(tree: Path, recipients: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tree)!r});"
         f" sys.path.insert(1, {str(ROOT / 'bench')!r}); import compose, json;"
         f" print(json.dumps(compose.child({recipients})))"],
        env=env, cwd=tree, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def extract(rev: str, into: Path) -> Path:
    archive = into / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--against", required=True, help="the commit to compare with (baseline)")
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = extract(args.against, Path(tmp))
        best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
        for _ in range(args.rounds):
            for label, tree in (("before", base), ("after", ROOT)):
                for key, value in run_tree(tree, args.recipients).items():
                    best[label][key] = min(value, best[label].get(key, value))
    print(f"$ {Path(sys.executable).name} {' '.join(sys.argv)}")
    print(f"CPU time, fastest of {args.rounds} rounds, {args.recipients:,} short messages")
    print(f"{'':24} {'before (' + args.against + ')':>22} {'after (this tree)':>18} {'ratio':>7}")
    for key in best["before"]:
        before, after = best["before"][key], best["after"][key]
        print(f"{key:24} {before:22.3f} {after:18.3f} {after / before:7.2f}")


if __name__ == "__main__":
    main()
