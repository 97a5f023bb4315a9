"""Checks Berth's infrastructure code; run by infra/check.sh inside its pinned virtualenv.

Three checks, each failing the run on any finding:

1. parse: every ``.bicep`` file parses with tree-sitter-bicep (which knows current Bicep syntax:
   user-defined types, ``existing``, loops, lambdas, nullable types); error and missing nodes are
   failures, reported with file, line and column.
2. checkov: ``checkov --framework bicep`` over the folder. Failed checks fail; so do parse errors,
   which checkov otherwise only counts (its pycep parser is older than tree-sitter-bicep and skips
   files it cannot read), a Bicep file with resources that checkov reported nothing for, and a
   suppression without a justification.
3. app settings: the names the Bicep sets on the Function App equal ``app-settings.txt`` (one name
   a line, sorted, no duplicates), which the handler's own test compares with what it reads.
   Checks 1 and 2 run once per variant (VARIANTS): a copy of the folder in which every
   ``<flag> ? a : b`` is replaced by the branch the variant takes, and, where the flag is on, every
   ``// checkov:skip=…: without <flag>: …`` suppression is dropped, so checkov must pass those
   checks on the values that variant deploys. checkov does not evaluate conditions itself.
4. azd wiring: ``azure.yaml`` (beside the infra folder) points at a Bicep module that exists, its
   hook scripts exist and are executable, its function service is the one the Bicep tags with
   ``azd-service-name``, and ``main.parameters.json`` names parameters that ``main.bicep`` declares
   and gives every parameter that has no default.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

BICEP = Language(tree_sitter_bicep.language())
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Resource types whose body sets app settings: a site (siteConfig.appSettings, an array of
# {name, value}) or its `appsettings` config resource (properties, an object of name: value).
SITE_TYPES = ("Microsoft.Web/sites@", "Microsoft.Web/sites/slots@")
CONFIG_TYPES = ("Microsoft.Web/sites/config@", "Microsoft.Web/sites/slots/config@")
# The deployments checks 1 and 2 look at: a name and the value of each boolean parameter it sets.
VARIANTS: dict[str, dict[str, bool]] = {
    "default": {"privateNetworking": False},
    "private": {"privateNetworking": True},
}


@dataclass
class Outcome:
    """What one check found: problems fail the run, notes are printed for the record."""

    name: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def bicep_files(root: Path) -> list[Path]:
    """Every .bicep file under root, in a stable order."""
    return sorted(p for p in root.rglob("*.bicep") if p.is_file())


def parse(path: Path) -> Node:
    """The tree-sitter syntax tree of one file."""
    return Parser(BICEP).parse(path.read_bytes()).root_node


def syntax_errors(path: Path, root: Node) -> list[str]:
    """`file:line:col: ...` for every error or missing node, outermost first."""
    found: list[str] = []

    def walk(node: Node) -> None:
        if node.is_missing:
            line, col = node.start_point
            found.append(f"{path}:{line + 1}:{col + 1}: missing {node.type}")
            return
        if node.type == "ERROR":
            line, col = node.start_point
            text = node.text.decode("utf-8", "replace").splitlines()[0][:60] if node.text else ""
            found.append(f"{path}:{line + 1}:{col + 1}: cannot parse {text!r}")
            return
        for child in node.children:
            walk(child)

    walk(root)
    return found


def check_parse(files: list[Path]) -> Outcome:
    """Check 1: every file parses."""
    outcome = Outcome("parse")
    for path in files:
        outcome.problems.extend(syntax_errors(path, parse(path)))
    outcome.notes.append(f"{len(files)} Bicep files parsed with tree-sitter-bicep")
    return outcome


def condition_flag(node: Node) -> tuple[str, bool] | None:
    """`flag`, `!flag` or `(flag)` as (flag, whether the condition is the flag itself)."""
    if node.type == "parenthesized_expression" and len(node.named_children) == 1:
        return condition_flag(node.named_children[0])
    if node.type == "identifier":
        return node.text.decode(), True
    if node.type == "unary_expression" and node.children[0].type == "!" and len(node.named_children) == 1:
        inner = condition_flag(node.named_children[0])
        return (inner[0], not inner[1]) if inner else None
    return None


def specialise(text: str, values: dict[str, bool]) -> str:
    """The Bicep text as one variant deploys it: `flag ? a : b` becomes a or b, and for each flag
    that is on, the `// checkov:skip=ID: without <flag>: ...` comments go."""
    source = text.encode("utf-8")
    while True:
        found = None

        def walk(node: Node) -> None:
            nonlocal found
            if found is not None:
                return
            if node.type == "ternary_expression":
                flag = condition_flag(node.named_children[0])
                if flag is not None and flag[0] in values:
                    found = (node, values[flag[0]] == flag[1])
                    return
            for child in node.children:
                walk(child)

        walk(Parser(BICEP).parse(source).root_node)
        if found is None:
            break
        node, take_first = found
        branches = [c for c in node.named_children[1:]]
        chosen = branches[0] if take_first else branches[1]
        source = source[: node.start_byte] + chosen.text + source[node.end_byte :]
    lines = source.decode("utf-8").splitlines(keepends=True)
    for flag, on in values.items():
        if on:
            marker = re.compile(r"^\s*//\s*checkov:skip=[A-Z0-9_]+:\s*without " + re.escape(flag) + r":")
            lines = [line for line in lines if not marker.match(line)]
    return "".join(lines)


def render_variant(root: Path, files: list[Path], values: dict[str, bool], into: Path) -> list[Path]:
    """Writes the variant of every Bicep file under `into`, at the same relative paths."""
    rendered = []
    for path in files:
        target = into / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(specialise(path.read_text(encoding="utf-8"), values), encoding="utf-8")
        rendered.append(target)
    return rendered


def string_literal(node: Node | None) -> str | None:
    """The text of a plain string literal, or None for anything else (interpolation included)."""
    if node is None or node.type != "string":
        return None
    parts = [c for c in node.named_children]
    if any(c.type != "string_content" for c in parts):
        return None
    return "".join(c.text.decode() for c in parts)


def properties_of(obj: Node) -> dict[str, Node]:
    """An object literal's properties: key text to value node."""
    props: dict[str, Node] = {}
    for child in obj.named_children:
        if child.type != "object_property":
            continue
        key, value = child.named_children[0], child.named_children[-1]
        name = key.text.decode() if key.type == "identifier" else string_literal(key)
        if name is not None:
            props[name] = value
    return props


def resource_body(declaration: Node) -> Node | None:
    """The object literal of a resource declaration, looking through `if (...)`."""
    for child in declaration.named_children:
        if child.type == "object":
            return child
        if child.type == "if_statement":
            return next((c for c in child.named_children if c.type == "object"), None)
    return None


def where(path: Path, node: Node) -> str:
    return f"{path}:{node.start_point[0] + 1}"


def app_settings(path: Path, root: Node) -> tuple[dict[str, list[str]], list[str]]:
    """Setting names a file sets on Function Apps (name to places), and what could not be read.

    A name the check cannot read (built by interpolation, a loop or a variable) is a problem: the
    comparison with app-settings.txt is only worth something if it sees every name.
    """
    names: dict[str, list[str]] = {}
    unreadable: list[str] = []

    def add(name: str, node: Node) -> None:
        names.setdefault(name, []).append(where(path, node))

    for declaration in (n for n in root.named_children if n.type == "resource_declaration"):
        kind = string_literal(next((c for c in declaration.named_children if c.type == "string"), None)) or ""
        body = resource_body(declaration)
        if body is None:
            if kind.startswith(SITE_TYPES + CONFIG_TYPES) and "existing" not in declaration.text.decode():
                unreadable.append(f"{where(path, declaration)}: the body of {kind} is not an object literal")
            continue
        props = properties_of(body)
        if kind.startswith(SITE_TYPES):
            site_config = properties_of(props["properties"]).get("siteConfig") if "properties" in props else None
            settings = properties_of(site_config).get("appSettings") if site_config is not None and site_config.type == "object" else None
            if settings is None:
                continue
            if settings.type != "array":
                unreadable.append(f"{where(path, settings)}: appSettings is not an array literal")
                continue
            for item in settings.named_children:
                if item.type != "object":
                    unreadable.append(f"{where(path, item)}: an appSettings entry is not an object literal")
                    continue
                name = string_literal(properties_of(item).get("name"))
                if name is None:
                    unreadable.append(f"{where(path, item)}: an appSettings name is not a plain string")
                else:
                    add(name, item)
        elif kind.startswith(CONFIG_TYPES) and string_literal(props.get("name")) == "appsettings":
            values = props.get("properties")
            if values is None or values.type != "object":
                unreadable.append(f"{where(path, body)}: appsettings properties are not an object literal")
                continue
            for child in values.named_children:
                if child.type == "object_property":
                    key = child.named_children[0]
                    name = key.text.decode() if key.type == "identifier" else string_literal(key)
                    if name is None:
                        unreadable.append(f"{where(path, child)}: an app setting name is not a plain string")
                    else:
                        add(name, child)
                else:
                    unreadable.append(f"{where(path, child)}: appsettings holds something other than name: value")
    return names, unreadable


def read_settings_file(path: Path) -> tuple[list[str], list[str]]:
    """The names listed in app-settings.txt, and what is wrong with the file."""
    problems: list[str] = []
    if not path.is_file():
        return [], [f"{path}: missing"]
    lines = path.read_text(encoding="utf-8").splitlines()
    names = [line.strip() for line in lines if line.strip()]
    for number, line in enumerate(lines, 1):
        if not line or line != line.strip():
            problems.append(f"{path}:{number}: blank line or stray whitespace")
        elif line and not SETTING_NAME.match(line):
            problems.append(f"{path}:{number}: {line!r} is not a setting name")
    if names != sorted(names):
        problems.append(f"{path}: names are not sorted (expected {', '.join(sorted(names))})")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"{path}: listed twice: {', '.join(duplicates)}")
    return names, problems


def check_app_settings(files: list[Path], settings_file: Path) -> Outcome:
    """Check 3: the Bicep sets exactly the names in app-settings.txt."""
    outcome = Outcome("app settings")
    declared: dict[str, list[str]] = {}
    for path in files:
        names, unreadable = app_settings(path, parse(path))
        outcome.problems.extend(unreadable)
        for name, places in names.items():
            declared.setdefault(name, []).extend(places)
    listed, file_problems = read_settings_file(settings_file)
    outcome.problems.extend(file_problems)
    if not declared:
        outcome.problems.append("no app settings found in any Bicep file (is the Function App still defined?)")
    for name in sorted(set(declared) - set(listed)):
        outcome.problems.append(f"{name} is set at {', '.join(declared[name])} but not listed in {settings_file}")
    for name in sorted(set(listed) - set(declared)):
        outcome.problems.append(f"{name} is listed in {settings_file} but no Bicep file sets it")
    for name, places in sorted(declared.items()):
        if len(places) > 1:
            outcome.problems.append(f"{name} is set more than once: {', '.join(places)}")
    outcome.notes.append(f"{len(declared)} app settings in the Bicep, {len(listed)} in {settings_file.name}")
    return outcome


def unreadable_by_checkov(files: list[Path]) -> list[Path]:
    """Files that checkov's own Bicep parser (pycep, pinned by checkov) cannot read.

    Asked directly rather than inferred from the report: checkov exits 0 on a file it cannot parse
    and only counts it, and a parsed file whose resources no check covers leaves no trace either.
    """
    from checkov.bicep.parser import Parser as CheckovBicepParser

    parser = CheckovBicepParser()
    return [path for path in files if parser.parse(path)[0] is None]


def evaluate_checkov(report: dict, unreadable: list[Path]) -> Outcome:
    """Check 2, given checkov's JSON report for the bicep framework and the files it cannot read."""
    outcome = Outcome("checkov")
    results = report.get("results", {})
    summary = report.get("summary", {})
    for failed in results.get("failed_checks", []):
        lines = failed.get("file_line_range") or ["?", "?"]
        outcome.problems.append(
            f"{failed['check_id']} failed on {failed['resource']} at {failed['file_path']}:{lines[0]}-{lines[1]}: {failed['check_name']}"
        )
    for path in results.get("parsing_errors", []) or []:
        outcome.problems.append(f"checkov could not parse {path} (a parse error counts as a failure)")
    if summary.get("parsing_errors") and not results.get("parsing_errors"):
        outcome.problems.append(f"checkov reports {summary['parsing_errors']} parse errors")
    reported = {str(p) for p in results.get("parsing_errors", []) or []}
    for path in unreadable:
        if str(path) not in reported:
            outcome.problems.append(f"checkov's parser cannot read {path}, so checkov checked none of it")
    for skipped in results.get("skipped_checks", []):
        reason = (skipped.get("check_result", {}).get("suppress_comment") or "").strip()
        place = f"{skipped['file_path']} {skipped['resource']}"
        if not reason or reason == "No comment provided":
            outcome.problems.append(f"{skipped['check_id']} is suppressed without a justification at {place}")
        else:
            outcome.notes.append(f"skipped {skipped['check_id']} ({place}): {reason}")
    outcome.notes.insert(
        0,
        f"{summary.get('passed', 0)} passed, {summary.get('failed', 0)} failed, {summary.get('skipped', 0)} skipped "
        f"over {summary.get('resource_count', 0)} resources (checkov {summary.get('checkov_version', '?')})",
    )
    return outcome


def run_checkov(root: Path) -> dict:
    """Runs checkov on root and returns its bicep report (an empty report when nothing was scanned)."""
    checkov = Path(sys.executable).with_name("checkov")
    env = dict(os.environ, LOG_LEVEL="WARNING")
    done = subprocess.run(
        [str(checkov), "--directory", str(root), "--framework", "bicep", "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited with {done.returncode}: {done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    reports = report if isinstance(report, list) else [report]
    for item in reports:
        if item.get("check_type") == "bicep":
            return item
    # With nothing to scan checkov prints an empty summary instead of a report.
    return {"results": {}, "summary": {}}


def check_checkov(root: Path, files: list[Path]) -> Outcome:
    """Check 2: checkov passes, with parse errors as failures."""
    return evaluate_checkov(run_checkov(root), unreadable_by_checkov(files))


def tagged_service_names(files: list[Path]) -> set[str]:
    """Values of every `'azd-service-name': '...'` property in the Bicep."""
    names: set[str] = set()

    def walk(node: Node) -> None:
        if node.type == "object_property":
            key, value = node.named_children[0], node.named_children[-1]
            if string_literal(key) == "azd-service-name" and string_literal(value) is not None:
                names.add(string_literal(value) or "")
        for child in node.named_children:
            walk(child)

    for path in files:
        walk(parse(path))
    return names


def declared_parameters(path: Path) -> dict[str, bool]:
    """Parameters of a Bicep file: name to whether it has a default."""
    params: dict[str, bool] = {}
    for node in parse(path).named_children:
        if node.type == "parameter_declaration":
            name = next(c for c in node.named_children if c.type == "identifier").text.decode()
            params[name] = any(c.type == "=" for c in node.children)
    return params


def check_azd(root: Path, files: list[Path]) -> Outcome:
    """Check 4: azure.yaml, the hooks, the service tag and the parameters file agree."""
    import yaml

    outcome = Outcome("azd wiring")
    project = root.parent
    azure_yaml = project / "azure.yaml"
    if not azure_yaml.is_file():
        outcome.problems.append(f"{azure_yaml}: missing")
        return outcome
    config = yaml.safe_load(azure_yaml.read_text(encoding="utf-8")) or {}
    infra = config.get("infra", {})
    module = project / infra.get("path", "infra") / f"{infra.get('module', 'main')}.bicep"
    if not module.is_file():
        outcome.problems.append(f"azure.yaml names the Bicep module {module}, which does not exist")

    def hooks_of(owner: dict, base: Path, where_: str) -> None:
        for event, hook in (owner.get("hooks") or {}).items():
            for platform in ("posix", "windows"):
                run = (hook.get(platform) or {}).get("run") if isinstance(hook, dict) else None
                if run and platform == "posix":
                    script = base / run
                    if not script.is_file() or not os.access(script, os.X_OK):
                        outcome.problems.append(f"{where_} {event} hook {run} is not an executable file")

    hooks_of(config, project, "azure.yaml")
    tagged = tagged_service_names(files)
    functions = {n: s for n, s in (config.get("services") or {}).items() if s.get("host") == "function"}
    if not functions:
        outcome.problems.append("azure.yaml has no service with host: function")
    for name, service in functions.items():
        hooks_of(service, project / service.get("project", "."), f"service {name}")
        if name not in tagged:
            outcome.problems.append(f"service {name} of azure.yaml matches no azd-service-name tag (tags: {sorted(tagged)})")
        if service.get("language") == "custom" and not service.get("dist"):
            outcome.problems.append(f"service {name}: language custom needs dist (the folder azd deploys)")

    parameters_file = module.with_suffix(".parameters.json")
    if module.is_file() and parameters_file.is_file():
        declared = declared_parameters(module)
        given = json.loads(parameters_file.read_text(encoding="utf-8")).get("parameters", {})
        for name in sorted(set(given) - set(declared)):
            outcome.problems.append(f"{parameters_file.name} sets {name}, which {module.name} does not declare")
        for name in sorted(n for n, has_default in declared.items() if not has_default and n not in given):
            outcome.problems.append(f"{module.name} needs {name}, which {parameters_file.name} does not give")
    outcome.notes.append(f"services {sorted(functions)} deploy to the app tagged {sorted(tagged)}")
    return outcome


def main(argv: list[str]) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("root", type=Path, help="the infra folder")
    args.add_argument("--settings", type=Path, help="app settings list (default: ROOT/app-settings.txt)")
    options = args.parse_args(argv)
    root = options.root.resolve()
    files = bicep_files(root)
    if not files:
        print(f"infra check: no .bicep files under {root}", file=sys.stderr)
        return 1
    outcomes = []
    with tempfile.TemporaryDirectory() as scratch:
        for variant, values in VARIANTS.items():
            into = Path(scratch) / variant
            rendered = render_variant(root, files, values, into)
            setting = ", ".join(f"{k}={str(v).lower()}" for k, v in values.items())
            for outcome in (check_parse(rendered), check_checkov(into, rendered)):
                outcome.name = f"{outcome.name} ({variant}: {setting})"
                outcome.problems = [p.replace(str(into), str(root)) for p in outcome.problems]
                outcome.notes = [n.replace(str(into), str(root)) for n in outcome.notes]
                outcomes.append(outcome)
    outcomes += [
        check_app_settings(files, options.settings or root / "app-settings.txt"),
        check_azd(root, files),
    ]
    for outcome in outcomes:
        print(f"{'ok' if outcome.passed else 'FAILED'}: {outcome.name}")
        for note in outcome.notes:
            print(f"    {note}")
        for problem in outcome.problems:
            print(f"  - {problem}")
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
