#!/usr/bin/env python3
"""Keeps the printed outputs in README.md true: each fenced block that follows a marker

    <!-- output: build/examples/model -->

is the stdout of that command, run from the repository root. `make readme` rewrites the blocks;
`--check` (run by `make test`) fails, naming the command, when a block differs from what the
program prints now. Commands are run with the build directory given by --build (default build).
"""
import argparse
import difflib
import pathlib
import re
import shlex
import subprocess
import sys

MARKER = re.compile(r"^<!-- output: (?P<command>.+?) -->\n```\n(?P<block>.*?)```\n", re.M | re.S)


def run(command: str, root: pathlib.Path, build: str) -> str:
    argv = shlex.split(command)
    if argv[0].startswith("build/"):
        argv[0] = build + argv[0][len("build"):]
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        sys.exit(f"readme_outputs: `{command}` exited with {done.returncode}:\n{done.stderr}")
    return done.stdout if done.stdout.endswith("\n") else done.stdout + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    parser.add_argument("--build", default="build", help="the build directory the commands run from")
    parser.add_argument("--readme", default=None, help="the README (default: the repository's)")
    args = parser.parse_args()
    root = pathlib.Path(__file__).resolve().parent.parent
    readme = pathlib.Path(args.readme) if args.readme else root / "README.md"
    text = readme.read_text()
    stale = []

    def replace(match: re.Match) -> str:
        command = match.group("command")
        output = run(command, root, args.build)
        if output != match.group("block"):
            stale.append((command, match.group("block"), output))
        return f"<!-- output: {command} -->\n```\n{output}```\n"

    updated, count = MARKER.subn(replace, text)
    if count == 0:
        sys.exit(f"readme_outputs: no '<!-- output: ... -->' block in {readme}")
    if args.check:
        for command, old, new in stale:
            diff = difflib.unified_diff(old.splitlines(), new.splitlines(), "README", command, lineterm="")
            print(f"README block of `{command}` is stale (run `make readme`):\n" + "\n".join(diff))
        print(f"readme_outputs: {count - len(stale)} of {count} blocks current")
        return 1 if stale else 0
    readme.write_text(updated)
    print(f"readme_outputs: {len(stale)} of {count} blocks rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
