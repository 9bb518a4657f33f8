#!/usr/bin/env python3
"""Compiles and runs the C++ code blocks of README.md (tests/readme/CMakeLists.txt drives it).

Every ```cpp block of the README becomes part of one generated translation unit, built with
-Wall -Wextra -Werror against xgrad::xgrad: the block is a program of its own, in a namespace of
its own, run by name from one executable. An HTML comment on the line right before the block's
fence (invisible on the rendered page) says how; several directives are separated by ";":

    <!-- readme-test: name training -->            names the program (default: line<N>, N the
                                                    line of the block's fence)
    <!-- readme-test: part of training -->         appends this block to the program `training`
                                                    (an earlier block named so): one main()
    <!-- readme-test: prints -->                    the next plain ``` block below this one (before
                                                    the next ```cpp block) is the program's stdout,
                                                    exactly; the test runs it and compares
    <!-- readme-test: quotes examples/model.cpp --> every non-blank line of the block occurs, in
                                                    this order and up to whitespace, in that file
    <!-- readme-test: given Tensor x = randn({4, 20, 32}); -->
                                                    code that runs first in main(), for the names
                                                    a fragment uses without declaring (the last
                                                    directive: the rest of the comment is code)
    <!-- readme-test: skip REASON -->               not compiled (the reason is required)

How a block becomes a program (the wrap): `#include` lines go to the top of the file; lines at
column 0 that begin `using`, `struct`, `class`, `template`, `enum`, `union` or `namespace`, through
the next line at column 0 that begins with `}` (or the same line when it ends with `;`), stay at
namespace scope, with the `//` comment lines just above them; everything else is the body of the
program's main(), which returns 0. The file starts with `#include <xgrad/xgrad.hpp>` and
`#include <fmt/core.h>`, and each namespace with `using namespace xgrad;`. A block that defines
`int main()` itself is taken as is (its main is renamed and called by name). `#line` directives
point compiler errors at README.md's own lines.

    readme_blocks.py generate --readme README.md --out readme_blocks.cpp
    readme_blocks.py check --readme README.md --root . --exe build/tests/readme/readme_blocks
    readme_blocks.py list --readme README.md       the programs, their lines, which outputs are compared

`check` runs every program (it must exit 0), compares the outputs of the `prints` blocks and
checks the `quotes`; it prints one line per program and exits 1 when anything differs.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import pathlib
import re
import subprocess
import sys

FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^`]*)$")
DIRECTIVE = re.compile(r"<!--\s*readme-test:(?P<body>.*?)-->\s*$", re.S)
TOP_LEVEL = re.compile(r"^(using|struct|class|template|enum|union|namespace)\b")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ReadmeError(Exception):
    pass


@dataclasses.dataclass
class Block:
    line: int                      # 1-based line of the opening fence
    code: list[str]                # the lines between the fences
    name: str = ""
    part_of: str = ""
    prints: bool = False
    quotes: str = ""
    given: list[tuple[int, str]] = dataclasses.field(default_factory=list)  # (README line, code)
    skip: str = ""
    expected: str | None = None    # the stdout shown below the block (prints)
    expected_line: int = 0


@dataclasses.dataclass
class Program:
    name: str
    blocks: list[Block]

    @property
    def line(self) -> int:
        return self.blocks[0].line

    @property
    def expected(self) -> tuple[str, int] | None:
        shown = [(b.expected, b.expected_line) for b in self.blocks if b.prints]
        return shown[-1] if shown else None


def fences(lines: list[str]):
    """(start, end, info) of every fenced block: start and end are 0-based fence line indices."""
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m:
            for j in range(i + 1, len(lines)):
                if lines[j].strip() == "```":
                    yield i, j, m.group("info").strip()
                    i = j
                    break
            else:
                raise ReadmeError(f"README.md:{i + 1}: a fence that is never closed")
        i += 1


def directive_before(lines: list[str], fence: int) -> tuple[str, int] | None:
    """The readme-test comment that ends on the line right before `fence`: (body, 1-based line)."""
    end = fence - 1
    if end < 0 or not lines[end].rstrip().endswith("-->"):
        return None
    start = end
    while start >= 0 and "<!--" not in lines[start]:
        start -= 1
    if start < 0:
        return None
    m = DIRECTIVE.search("\n".join(lines[start:end + 1]))
    return (m.group("body"), start + 1) if m else None


def apply_directives(block: Block, body: str, line: int) -> None:
    rest = body.strip()
    while rest:
        if rest.startswith("given"):
            code = rest[len("given"):].lstrip(" :")
            first = line + body[:len(body) - len(code)].count("\n")  # the README line code starts on
            lines = code.rstrip().split("\n")
            while lines and not lines[0].strip():
                lines.pop(0)
                first += 1
            block.given = [(first + k, text) for k, text in enumerate(lines)]
            return
        head, _, rest = rest.partition(";")
        head, rest = head.strip(), rest.strip()
        word, _, arg = head.partition(" ")
        arg = arg.strip()
        where = f"README.md:{line}"
        if head.startswith("part of "):
            block.part_of = head[len("part of "):].strip()
        elif word == "name" and NAME.match(arg):
            block.name = arg
        elif head == "prints":
            block.prints = True
        elif word == "quotes" and arg:
            block.quotes = arg
        elif word == "skip" and arg:
            block.skip = arg
        else:
            raise ReadmeError(f"{where}: unknown readme-test directive '{head}' (see tests/readme/readme_blocks.py)")


def parse(readme: pathlib.Path) -> list[Program]:
    lines = readme.read_text().split("\n")
    found = list(fences(lines))
    blocks: list[Block] = []
    for k, (start, end, info) in enumerate(found):
        if info not in ("cpp", "c++"):
            continue
        indent = len(FENCE.match(lines[start]).group("indent"))
        block = Block(line=start + 1, code=[l[indent:] if l[:indent].strip() == "" else l for l in lines[start + 1:end]])
        d = directive_before(lines, start)
        if d:
            apply_directives(block, *d)
        if block.prints:
            shown = None
            for s, e, i in found[k + 1:]:
                if i in ("cpp", "c++"):
                    break
                if i == "":
                    shown = (s, e)
                    break
            if shown is None:
                raise ReadmeError(f"README.md:{block.line}: 'prints', but no plain ``` block follows before the next cpp block")
            s, e = shown
            block.expected = "".join(l + "\n" for l in lines[s + 1:e])
            block.expected_line = s + 1
        blocks.append(block)

    programs: dict[str, Program] = {}
    for block in blocks:
        if block.skip:
            continue
        if block.part_of:
            if block.part_of not in programs:
                raise ReadmeError(f"README.md:{block.line}: 'part of {block.part_of}', but no block above is named so")
            programs[block.part_of].blocks.append(block)
            continue
        name = block.name or f"line{block.line}"
        if name in programs:
            raise ReadmeError(f"README.md:{block.line}: a second program named '{name}'")
        programs[name] = Program(name, [block])
    return list(programs.values())


def split_block(block: Block) -> tuple[list[tuple[int, str]], list[tuple[int, str]], list[tuple[int, str]]]:
    """(includes, namespace-scope lines, main-body lines), each as (README line, text)."""
    includes, scope, body = [], [], []
    pending_comments: list[tuple[int, str]] = []
    code = block.code
    i = 0
    while i < len(code):
        text, number = code[i], block.line + 1 + i
        if text.startswith("#include"):
            includes.append((number, text))
        elif text.startswith("//"):
            pending_comments.append((number, text))
            i += 1
            continue
        elif TOP_LEVEL.match(text):
            scope += pending_comments
            pending_comments = []
            j = i
            if not text.rstrip().endswith(";"):
                j = i + 1
                while j < len(code) and not code[j].startswith("}"):
                    j += 1
                if j == len(code):
                    raise ReadmeError(f"README.md:{number}: '{text.strip()}' has no closing line at column 0")
            scope += [(block.line + 1 + k, code[k]) for k in range(i, j + 1)]
            i = j + 1
            continue
        else:
            body += pending_comments
            body.append((number, text))
        pending_comments = []
        i += 1
    body += pending_comments
    return includes, scope, body


def with_lines(numbered: list[tuple[int, str]], readme: str) -> list[str]:
    """The lines, with a `#line` directive wherever they do not follow on in the README."""
    out, last = [], None
    for number, text in numbered:
        if number != (last or 0) + 1 or last is None:
            out.append(f'#line {number} "{readme}"')
        out.append(text)
        last = number
    return out


def generate(programs: list[Program], readme: pathlib.Path, out_name: str) -> str:
    path = str(readme.resolve())
    includes = ["#include <xgrad/xgrad.hpp>", "#include <fmt/core.h>", "#include <cstring>"]
    units = []
    for program in programs:
        whole = [l for b in program.blocks for l in b.code]
        if any(re.match(r"^int main\s*\(\s*\)", l) for l in whole):
            # a whole program: taken as is, its main renamed
            numbered = []
            for b in program.blocks:
                for k, text in enumerate(b.code):
                    if text.startswith("#include"):
                        includes.append(text)
                    else:
                        numbered.append((b.line + 1 + k, re.sub(r"^int main\s*\(\s*\)", "int program_main()", text)))
            units.append((program, with_lines(numbered, path)))
            continue
        scope, body = [], []
        for b in program.blocks:
            inc, sc, bo = split_block(b)
            includes += [t for _, t in inc]
            scope += sc
            body += b.given
            body += bo
        units.append((program, with_lines(scope, path) + ["int program_main() {"] + with_lines(body, path)
                      + ["  return 0;", "}"]))

    seen, text = set(), [f"// Generated by tests/readme/readme_blocks.py from {path}: do not edit."]
    for inc in includes:
        if inc not in seen:
            seen.add(inc)
            text.append(inc)
    text.append("")
    for program, unit in units:
        text += [f"namespace readme_{program.name} {{", "using namespace xgrad;", *unit,
                 f"}}  // namespace readme_{program.name}", ""]
    text.append(f'#line {len(text) + 2} "{out_name}"')
    text.append("int main(int argc, char** argv) {")
    text.append("  if (argc != 2) {")
    text.append('    fmt::print(stderr, "usage: readme_blocks PROGRAM; the programs:\\n");')
    for program, _ in units:
        text.append(f'    fmt::print(stderr, "  {program.name}\\n");')
    text.append("    return 2;")
    text.append("  }")
    for program, _ in units:
        text.append(f'  if (std::strcmp(argv[1], "{program.name}") == 0) return readme_{program.name}::program_main();')
    text.append('  fmt::print(stderr, "readme_blocks: no program {}\\n", argv[1]);')
    text.append("  return 2;")
    text.append("}")
    return "\n".join(text) + "\n"


def quoted(block: Block, root: pathlib.Path) -> str | None:
    """None when every non-blank line of the block occurs in order in block.quotes; else why not."""
    source = root / block.quotes
    if not source.is_file():
        return f"README.md:{block.line}: quotes {block.quotes}, which does not exist"
    def squeeze(line: str) -> str:  # up to whitespace: indentation, alignment of comments
        return re.sub(r"\s+", "", line)

    have = [squeeze(l) for l in source.read_text().split("\n")]
    at = 0
    for k, text in enumerate(block.code):
        want = squeeze(text)
        if not want:
            continue
        while at < len(have) and have[at] != want:
            at += 1
        if at == len(have):
            return (f"README.md:{block.line + 1 + k}: the block quotes {block.quotes}, but this line is not there "
                    f"(or not in this order):\n    {text.strip()}")
        at += 1
    return None


def check(programs: list[Program], exe: str, root: pathlib.Path, timeout: float) -> int:
    failures = 0
    compared = 0
    for program in programs:
        for block in program.blocks:
            if block.quotes:
                why = quoted(block, root)
                if why:
                    print(why)
                    failures += 1
        try:
            done = subprocess.run([exe, program.name], cwd=root, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"README.md:{program.line}: program {program.name} ran past {timeout:.0f} s")
            failures += 1
            continue
        if done.returncode != 0:
            print(f"README.md:{program.line}: program {program.name} exited with {done.returncode}:\n"
                  f"{done.stdout}{done.stderr}")
            failures += 1
            continue
        shown = program.expected
        if shown is None:
            print(f"README.md:{program.line}: {program.name}: compiled and ran")
            continue
        compared += 1
        expected, line = shown
        if done.stdout != expected:
            diff = difflib.unified_diff(expected.splitlines(), done.stdout.splitlines(),
                                        f"README.md:{line} (shown)", f"{program.name} (printed)", lineterm="")
            print(f"README.md:{line}: the output shown differs from what program {program.name} prints:")
            print("\n".join(diff))
            failures += 1
        else:
            print(f"README.md:{program.line}: {program.name}: compiled and ran; prints the output shown at line {line}")
    blocks = sum(len(p.blocks) for p in programs)
    print(f"readme_blocks: {blocks} blocks in {len(programs)} programs, {compared} outputs compared, "
          f"{failures} failure{'s' if failures != 1 else ''}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["generate", "check", "list"])
    parser.add_argument("--readme", required=True, type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path, help="generate: the .cpp to write")
    parser.add_argument("--exe", help="check: the built readme_blocks program")
    parser.add_argument("--root", type=pathlib.Path, default=pathlib.Path.cwd(),
                        help="check: the directory the programs run in and quotes are read from")
    parser.add_argument("--timeout", type=float, default=300, help="check: seconds each program may run")
    args = parser.parse_args()
    try:
        programs = parse(args.readme)
    except ReadmeError as e:
        print(f"readme_blocks: {e}", file=sys.stderr)
        return 1
    if args.mode == "list":
        for p in programs:
            print(p.name, f"(README.md:{p.line}, {len(p.blocks)} block{'s' if len(p.blocks) > 1 else ''}"
                  f"{', output compared' if p.expected else ''})")
        return 0
    if args.mode == "generate":
        try:
            text = generate(programs, args.readme, str(args.out.resolve()))
        except ReadmeError as e:
            print(f"readme_blocks: {e}", file=sys.stderr)
            return 1
        # rewrite only on change, so an unrelated README edit does not rebuild the programs
        if not args.out.exists() or args.out.read_text() != text:
            args.out.write_text(text)
        return 0
    return check(programs, args.exe, args.root, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
