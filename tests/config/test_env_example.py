"""`.env.example` documents every variable config/settings.py reads (README promises it).

The names are found with `ast`: every call ``env("NAME", …)`` or ``env.<type>("NAME", …)`` on
the module's ``environ.Env`` instance. A variable counts as documented when .env.example has a
line ``NAME=…`` or, for optional ones, ``# NAME=…``."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "config" / "settings.py"
ENV_EXAMPLE = ROOT / ".env.example"


def _env_instances(tree: ast.Module) -> set[str]:
    """Names bound to ``environ.Env(...)`` (``env`` today)."""
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and node.value.func.attr == "Env"
        ):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def settings_env_reads(source: str) -> set[str]:
    tree = ast.parse(source)
    instances = _env_instances(tree)
    assert instances, "config/settings.py no longer binds environ.Env(); update this test"
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        direct = isinstance(func, ast.Name) and func.id in instances  # env("NAME")
        typed = (  # env.str("NAME"), env.bool("NAME"), env.db("NAME"), …
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in instances
        )
        if not (direct or typed):
            continue
        arg = node.args[0] if node.args else next(
            (k.value for k in node.keywords if k.arg in ("var", "name")), None
        )
        assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), (
            f"config/settings.py line {node.lineno}: read an environment variable by a "
            "literal name, so that this test (and .env.example) can see it"
        )
        found.add(arg.value)
    return found


def documented(text: str) -> set[str]:
    return set(re.findall(r"^\s*(?:#\s*)?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_the_parser_sees_every_form_of_read():
    source = (
        "import environ\nenv = environ.Env()\n"
        'A = env("PLAIN")\nB = env.bool("TYPED", default=False)\n'
        'C = env.db("DATABASE_URL", default="sqlite://")\nD = {"x": env.int(var="KEYWORD")}\n'
        'E = os.environ.get("NOT_OURS")\nF = other.str("NOT_ENV")\n'
    )
    assert settings_env_reads(source) == {"PLAIN", "TYPED", "DATABASE_URL", "KEYWORD"}
    assert documented("A=1\n# B=2\n#C=\n# prose mentioning D=3 is not\nlower=4\n") == {
        "A", "B", "C"}


def test_env_example_documents_every_variable_settings_reads():
    reads = settings_env_reads(SETTINGS.read_text())
    assert len(reads) > 40  # the parser really found the settings' reads
    missing = sorted(reads - documented(ENV_EXAMPLE.read_text()))
    assert not missing, (
        f".env.example does not document {', '.join(missing)}: add each with a one-line "
        "comment and its default (commented out where optional)."
    )
