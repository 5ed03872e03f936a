"""The README and the manual (docs/*.md) against the repository: every shell command of their fenced
code blocks names a script, module or make target that exists, and its arguments parse with that
tool's own argparse parser (the tool's ``main`` is called and stopped the moment its parser has
parsed); every config, tool and page they name exists; the README stays a front page."""
import argparse
import importlib
import importlib.util
import itertools
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

from conftest import REPO

PAGES = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]
SHELL_FENCES = {'bash', 'sh', 'shell'}
PYTHONS = {'python', 'python3', '.venv/bin/python'}
SHELL_UTILITIES = {'tar', 'cd'}  # ordinary shell around our commands (docs/benchmarks.md)
# the shell wrappers of tools/train.py and tools/test.py: (script, positionals before the tool's
# options, the tool, the tool's argv built from the wrapper's)
WRAPPERS = {
    'tools/dist_train.sh': (2, 'tools/train.py', lambda a: [a[0], '--launcher', 'pytorch', *a[2:]]),
    'tools/dist_test.sh': (3, 'tools/test.py', lambda a: [a[0], a[1], '--launcher', 'pytorch', *a[3:]]),
    'tools/slurm_train.sh': (4, 'tools/train.py',
                             lambda a: [a[2], '--work-dir', a[3], '--launcher', 'slurm', *a[4:]]),
    'tools/slurm_test.sh': (4, 'tools/test.py', lambda a: [a[2], a[3], '--launcher', 'slurm', *a[4:]]),
}
PLACEHOLDER = re.compile(r'^[A-Z][A-Z0-9_]*$')  # CONFIG, N, DIR, ... in a usage line


def _shell_commands(page: Path):
    """(page:line, command text) of every command in the page's bash/sh fences: continuation lines
    joined, comments dropped, ``a && b`` split."""
    lines = page.read_text().splitlines()
    fence, pending, start = None, '', 0
    for number, line in enumerate(lines, 1):
        if line.startswith('```'):
            fence = None if fence is not None else (line[3:].strip() or 'text')
            continue
        if fence not in SHELL_FENCES:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith('\\'):
            pending += line.rstrip()[:-1] + ' '
            continue
        tokens = []  # `a; b` as `a && b`
        for token in shlex.split(pending + line, comments=True):
            tokens += [token[:-1], '&&'] if token.endswith(';') and len(token) > 1 else [token]
        pending = ''
        for command in _split_on(tokens, '&&'):
            if command:
                yield f'{page.relative_to(REPO)}:{start}', command


def _split_on(tokens, separator):
    group = []
    for token in tokens:
        if token == separator:
            yield group
            group = []
        else:
            group.append(token)
    yield group


# usage-line syntax: [optional], a|b alternatives (inside a word or between words), `...` repeats
def _usage_tokens(tokens):
    out = []
    for token in tokens:
        lead = len(token) - len(token.lstrip('['))
        trail = len(token) - len(token.rstrip(']'))
        core = token[lead:len(token) - trail]
        out += ['['] * lead + ([core] if core not in ('', '...') else []) + [']'] * trail
    return out


def _parse_usage(tokens, i=0):
    """A node tree: ('alt', [seq, ...]), a seq is a list of ('word', [choices]) / ('opt', alt)."""
    alternatives, seq = [], []
    while i < len(tokens) and tokens[i] != ']':
        token = tokens[i]
        if token == '[':
            node, i = _parse_usage(tokens, i + 1)
            assert i < len(tokens), f'unclosed [ in {" ".join(tokens)}'
            seq.append(('opt', node))
        elif token == '|':
            alternatives.append(seq)
            seq = []
        else:
            seq.append(('word', token.split('|') if re.fullmatch(r'[\w.-]+(\|[\w.-]+)+', token)
                        else [token]))
        i += 1
    return ('alt', alternatives + [seq]), i


def _expand(node, pick: int, with_optional: bool):
    _, alternatives = node
    out = []
    for kind, value in alternatives[min(pick, len(alternatives) - 1)]:
        if kind == 'word':
            out.append(value[min(pick, len(value) - 1)])
        elif with_optional:
            out += _expand(value, pick, with_optional)
    return out


def _usage_variants(tokens):
    """Every alternative of a usage line in turn (all optional parts present), and the line
    without its optional parts."""
    tokens = _usage_tokens(tokens)
    if not any(t in ('[', ']', '|') or '|' in t for t in tokens):
        return [tokens]
    tree, end = _parse_usage(tokens)
    assert end == len(tokens), f'unbalanced ] in {" ".join(tokens)}'
    widest = max(len(t.split('|')) for t in tokens)
    variants = [_expand(tree, pick, True) for pick in range(widest)] + [_expand(tree, 0, False)]
    return [list(v) for v in dict.fromkeys(tuple(v) for v in variants)]


class _Parsed(BaseException):
    """Raised from inside a tool's parse_args: not an Exception, so a tool's handlers let it by."""

    def __init__(self, namespace):
        super().__init__()
        self.namespace = namespace


def _option_actions(parser: argparse.ArgumentParser) -> dict:
    actions = dict(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                actions.update(_option_actions(sub))
    return actions


def _fill_placeholders(parser, argv):
    """An all-caps word after an option (``--iters N``, ``--profile MODE``) stands for a value: the
    option's first choice, or 2 for a typed option; positional placeholders stay words."""
    actions, option, out = _option_actions(parser), None, []
    for token in argv:
        if token.startswith('-'):
            option = actions.get(token.split('=', 1)[0])
            out.append(token)
        elif PLACEHOLDER.match(token) and option is not None:
            if option.choices:
                out.append(str(next(iter(option.choices))))
            elif option.type not in (None, str):
                out.append('2')
            else:
                out.append(token)
        else:
            out.append(token)
    return out


_TOOLS = {}


def _tool_main(kind: str, name: str):
    """The ``main`` of tools/NAME.py or of the module benchmarks.NAME, imported once."""
    key = (kind, name)
    if key not in _TOOLS:
        if kind == 'script':
            spec = importlib.util.spec_from_file_location(f'_docs_tool_{Path(name).stem}', REPO / name)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(name)
        _TOOLS[key] = module.main
    return _TOOLS[key]


def _parse_with_tool(kind: str, name: str, argv, monkeypatch):
    """Run the tool's main on ARGV until its parser has parsed; fail with argparse's message."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(parser, args=None, namespace=None):
        args = _fill_placeholders(parser, list(args if args is not None else sys.argv[1:]))
        return_value = original(parser, args, namespace)
        raise _Parsed(return_value)

    environ = dict(os.environ)  # restored after the import too: benchmarks.check_kernels pops
    # TRITON_INTERPRET when imported, which left this process's later kernel tests uninterpreted
    try:
        main = _tool_main(kind, name)
        with monkeypatch.context() as patch:
            patch.setattr(argparse.ArgumentParser, 'parse_args', parse_then_stop)
            patch.setattr(sys, 'argv', [name, *argv])
            try:
                main(argv)
            except _Parsed as parsed:
                return parsed.namespace
            except SystemExit as stop:
                pytest.fail(f'{name} {" ".join(argv)}: its parser refused the arguments ({stop})')
    finally:
        os.environ.clear()
        os.environ.update(environ)
    pytest.fail(f'{name}: main() returned without parsing arguments')


def _makefile_targets():
    text = (REPO / 'Makefile').read_text()
    targets = set()
    for match in re.finditer(r'^([\w.%/-]+(?:[ \t]+[\w.%/-]+)*)[ \t]*:(?!=)', text, re.M):
        targets.update(match.group(1).split())
    return targets


def _strip_env(tokens):
    while tokens and re.fullmatch(r'[A-Z_][A-Z0-9_]*=.*', tokens[0]):
        tokens = tokens[1:]
    return tokens


COMMANDS = [(where, tokens) for page in PAGES for where, tokens in _shell_commands(page)]


def test_the_docs_have_commands_to_check():
    assert len(COMMANDS) > 40 and {p.name for p in PAGES} >= {'README.md', 'tools.md', 'faq.md'}


@pytest.mark.parametrize('where,command', COMMANDS, ids=[w for w, _ in COMMANDS])
def test_every_doc_command_names_what_exists_and_parses(where, command, monkeypatch):
    tokens = _strip_env(list(command))
    program, rest = tokens[0], tokens[1:]
    if program == 'make':
        targets = [t for t in rest if not re.fullmatch(r'\w+=.*', t) and not t.startswith('-')]
        assert targets and set(targets) <= _makefile_targets(), (where, command)
        return
    if program in SHELL_UTILITIES:
        return
    if program == 'pip':
        assert rest[:1] == ['install'], (where, command)
        return
    if program in PYTHONS and rest[:2] == ['-m', 'pytest']:
        for path in (t for t in rest[2:] if t.startswith('tests/')):
            assert (REPO / path.split('::')[0]).exists(), (where, path)
        return
    if program in PYTHONS and rest[:1] == ['-m']:
        module = rest[1]
        assert module.startswith('benchmarks.'), (where, command)
        assert (REPO / (module.replace('.', '/') + '.py')).is_file(), (where, module)
        for argv in _usage_variants(rest[2:]):
            _parse_with_tool('module', module, argv, monkeypatch)
        return
    if program in PYTHONS:
        script, rest = rest[0], rest[1:]
        assert script.startswith('tools/') and (REPO / script).is_file(), (where, script)
        for argv in _usage_variants(rest):
            _parse_with_tool('script', script, argv, monkeypatch)
        return
    if program == 'bash':
        program, rest = rest[0], rest[1:]
    assert program.endswith('.sh') and (REPO / program).is_file(), (where, command)
    if program in WRAPPERS:
        positionals, tool, tool_argv = WRAPPERS[program]
        for argv in _usage_variants(rest):
            assert len(argv) >= positionals, (where, argv)
            _parse_with_tool('script', tool, tool_argv(argv), monkeypatch)


def _brace_expand(path: str):
    match = re.search(r'\{([^{}]*)\}', path)
    if match is None:
        return [path]
    return list(itertools.chain.from_iterable(
        _brace_expand(path[:match.start()] + choice + path[match.end():])
        for choice in match.group(1).split(',')))


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


@pytest.mark.parametrize('page', PAGES, ids=[p.name for p in PAGES])
def test_every_config_script_and_link_a_page_names_exists(page):
    text = page.read_text()
    for named in re.findall(r'(?<![\w/])((?:configs|tools|benchmarks)/[\w{},./-]*\w\.(?:py|sh))',
                            text):
        for path in _brace_expand(named):
            assert (REPO / path).is_file(), f'{page.name} names {path}, which does not exist'
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'\w+://', target):
            continue
        file, _, anchor = target.partition('#')
        linked = (page.parent / file).resolve() if file else page
        assert linked.exists(), f'{page.name} links {target}, which does not exist'
        if anchor and linked.suffix == '.md':
            headings = re.findall(r'^#+ (.*)$', linked.read_text(), re.M)
            assert anchor in {_slug(h) for h in headings}, f'{page.name} links {target}: no such heading'


def test_the_readme_is_a_front_page_with_a_short_quick_start():
    readme = (REPO / 'README.md').read_text()
    assert len(readme.splitlines()) <= 200
    quick_start = re.search(r'^## Quick start\n+```bash\n(.*?)```', readme, re.M | re.S)
    assert quick_start and len(quick_start.group(1).splitlines()) <= 10
