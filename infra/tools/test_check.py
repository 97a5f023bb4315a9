"""Tests of check.py: each check must fail on the mistake it exists to catch, not only pass on
the real infra/. Run by infra/check.sh (`python -m unittest discover`)."""

from __future__ import annotations

import json
import tempfile
import textwrap
import unittest
from pathlib import Path

import check

SITE = """\
resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: 'app'
  location: 'westeurope'
  properties: {
    siteConfig: {
      appSettings: [
%s
      ]
    }
  }
}
"""


def site_with(*settings: str) -> str:
    """A Function App whose appSettings entries are the given name expressions."""
    entries = "\n".join(f"        {{\n          name: {name}\n          value: 'v'\n        }}" for name in settings)
    return SITE % entries


class Workspace:
    """A temporary folder of Bicep files and an app-settings.txt."""

    def __init__(self, files: dict[str, str], settings: str = "") -> None:
        self._dir = tempfile.TemporaryDirectory()
        self.root = Path(self._dir.name)
        for name, text in files.items():
            (self.root / name).write_text(textwrap.dedent(text), encoding="utf-8")
        (self.root / "app-settings.txt").write_text(settings, encoding="utf-8")

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *_: object) -> None:
        self._dir.cleanup()

    def files(self) -> list[Path]:
        return check.bicep_files(self.root)


class ParseTest(unittest.TestCase):
    def test_a_syntax_error_fails_with_its_line(self) -> None:
        broken = "param a string\nresource x 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: 'x'\n  location: = 3\n}\n"
        with Workspace({"broken.bicep": broken}) as ws:
            outcome = check.check_parse(ws.files())
        self.assertFalse(outcome.passed)
        self.assertTrue(any("broken.bicep:4:" in p for p in outcome.problems), outcome.problems)

    def test_current_syntax_parses(self) -> None:
        # User-defined types with decorators, nullable types, lambdas, existing and loops: the
        # syntax pycep-parser (checkov's parser) rejects and tree-sitter-bicep must accept.
        modern = """\
            @export()
            type pair = {
              @description('the name')
              name: string
              value: string?
            }
            param pairs pair[] = []
            param label string?
            var names = map(pairs, p => p.name)
            resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
              name: 'x'
            }
            resource ids 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = [for n in names: {
              name: n
              location: 'westeurope'
            }]
            output first string = pairs[?0].?value ?? label ?? 'none'
            """
        with Workspace({"modern.bicep": modern}) as ws:
            outcome = check.check_parse(ws.files())
        self.assertTrue(outcome.passed, outcome.problems)


class AppSettingsTest(unittest.TestCase):
    def test_matching_names_pass(self) -> None:
        with Workspace({"app.bicep": site_with("'A_ONE'", "'B__two'")}, "A_ONE\nB__two\n") as ws:
            outcome = check.check_app_settings(ws.files(), ws.root / "app-settings.txt")
        self.assertTrue(outcome.passed, outcome.problems)

    def test_drift_is_reported_both_ways(self) -> None:
        with Workspace({"app.bicep": site_with("'A'", "'B'")}, "A\nC\n") as ws:
            outcome = check.check_app_settings(ws.files(), ws.root / "app-settings.txt")
        self.assertFalse(outcome.passed)
        text = "\n".join(outcome.problems)
        self.assertIn("B is set at", text)
        self.assertIn("C is listed in", text)

    def test_an_unreadable_name_fails(self) -> None:
        with Workspace({"app.bicep": site_with("'A'", "'B_${suffix}'")}, "A\n") as ws:
            outcome = check.check_app_settings(ws.files(), ws.root / "app-settings.txt")
        self.assertFalse(outcome.passed)
        self.assertTrue(any("not a plain string" in p for p in outcome.problems), outcome.problems)

    def test_settings_built_in_a_loop_fail(self) -> None:
        looped = SITE.replace("appSettings: [\n%s\n      ]", "appSettings: [for n in names: {\n        name: n\n      }]")
        with Workspace({"app.bicep": looped}, "A\n") as ws:
            outcome = check.check_app_settings(ws.files(), ws.root / "app-settings.txt")
        self.assertFalse(outcome.passed)
        self.assertTrue(any("not an array literal" in p for p in outcome.problems), outcome.problems)

    def test_the_appsettings_config_resource_counts(self) -> None:
        config = """\
            resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
              parent: site
              name: 'appsettings'
              properties: {
                A: 'x'
                'B': 'y'
              }
            }
            """
        with Workspace({"app.bicep": site_with("'C'"), "config.bicep": config}, "A\nB\n") as ws:
            outcome = check.check_app_settings(ws.files(), ws.root / "app-settings.txt")
        self.assertEqual(["C is set at"], [p[: len("C is set at")] for p in outcome.problems if p.startswith("C ")])
        self.assertFalse(any(p.startswith(("A ", "B ")) for p in outcome.problems), outcome.problems)

    def test_a_name_set_twice_fails(self) -> None:
        with Workspace({"app.bicep": site_with("'A'", "'A'")}, "A\n") as ws:
            outcome = check.check_app_settings(ws.files(), ws.root / "app-settings.txt")
        self.assertTrue(any("set more than once" in p for p in outcome.problems), outcome.problems)

    def test_the_list_must_be_sorted_unique_and_clean(self) -> None:
        for text, expected in [
            ("B\nA\n", "not sorted"),
            ("A\nA\n", "listed twice"),
            ("A\n\nB\n", "blank line"),
            ("A \n", "stray whitespace"),
            ("A-B\n", "not a setting name"),
        ]:
            with self.subTest(text=text), Workspace({}, text) as ws:
                _, problems = check.read_settings_file(ws.root / "app-settings.txt")
                self.assertTrue(any(expected in p for p in problems), problems)

    def test_no_settings_at_all_fails(self) -> None:
        with Workspace({"empty.bicep": "param a string\n"}, "") as ws:
            outcome = check.check_app_settings(ws.files(), ws.root / "app-settings.txt")
        self.assertFalse(outcome.passed)


AZURE_YAML = """\
name: demo
infra:
  provider: bicep
  path: infra
  module: main
hooks:
  preprovision:
    posix:
      shell: sh
      run: infra/hooks/pre.sh
services:
  %s:
    project: .
    language: custom
    host: function
    dist: out
"""

MAIN = """\
targetScope = 'subscription'
param environmentName string
param location string = 'westeurope'
resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: 'app'
  location: location
  tags: {
    'azd-service-name': 'api'
  }
}
"""


class Project:
    """A temporary project: azure.yaml beside an infra folder with main.bicep, its parameters and a hook."""

    def __init__(self, service: str = "api", parameters: tuple[str, ...] = ("environmentName",), hook: bool = True) -> None:
        self._dir = tempfile.TemporaryDirectory()
        project = Path(self._dir.name)
        self.root = project / "infra"
        (self.root / "hooks").mkdir(parents=True)
        (project / "azure.yaml").write_text(AZURE_YAML % service, encoding="utf-8")
        (self.root / "main.bicep").write_text(MAIN, encoding="utf-8")
        values = {name: {"value": "x"} for name in parameters}
        (self.root / "main.parameters.json").write_text(json.dumps({"parameters": values}), encoding="utf-8")
        if hook:
            script = self.root / "hooks" / "pre.sh"
            script.write_text("#!/bin/sh\n", encoding="utf-8")
            script.chmod(0o755)

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *_: object) -> None:
        self._dir.cleanup()

    def outcome(self) -> check.Outcome:
        return check.check_azd(self.root, check.bicep_files(self.root))


class AzdWiringTest(unittest.TestCase):
    def test_consistent_wiring_passes(self) -> None:
        with Project() as project:
            outcome = project.outcome()
        self.assertTrue(outcome.passed, outcome.problems)

    def test_a_service_without_its_tag_fails(self) -> None:
        with Project(service="handler") as project:
            outcome = project.outcome()
        self.assertTrue(any("matches no azd-service-name" in p for p in outcome.problems), outcome.problems)

    def test_a_missing_hook_fails(self) -> None:
        with Project(hook=False) as project:
            outcome = project.outcome()
        self.assertTrue(any("infra/hooks/pre.sh" in p for p in outcome.problems), outcome.problems)

    def test_parameters_must_match_the_module(self) -> None:
        with Project(parameters=("location", "colour")) as project:
            problems = project.outcome().problems
        self.assertTrue(any("sets colour" in p for p in problems), problems)
        self.assertTrue(any("needs environmentName" in p for p in problems), problems)


def report(**results: list) -> dict:
    return {"check_type": "bicep", "results": results, "summary": {"passed": 1, "failed": 0}}


class CheckovEvaluationTest(unittest.TestCase):
    def test_a_clean_report_passes(self) -> None:
        ok = report(passed_checks=[{"check_id": "CKV_AZURE_3", "resource": "r", "file_path": "/a.bicep"}])
        self.assertTrue(check.evaluate_checkov(ok, []).passed)

    def test_a_failed_check_fails(self) -> None:
        failed = {
            "check_id": "CKV_AZURE_3",
            "check_name": "https only",
            "resource": "Microsoft.Storage/storageAccounts.a",
            "file_path": "/a.bicep",
            "file_line_range": [1, 9],
        }
        outcome = check.evaluate_checkov(report(failed_checks=[failed]), [])
        self.assertFalse(outcome.passed)
        self.assertIn("/a.bicep:1-9", outcome.problems[0])

    def test_a_parse_error_fails(self) -> None:
        self.assertFalse(check.evaluate_checkov(report(parsing_errors=["/x/a.bicep"]), []).passed)

    def test_a_file_checkov_cannot_read_fails_even_if_unreported(self) -> None:
        self.assertFalse(check.evaluate_checkov(report(), [Path("/x/a.bicep")]).passed)

    def test_a_suppression_without_a_reason_fails(self) -> None:
        skipped = {
            "check_id": "CKV_AZURE_35",
            "resource": "r",
            "file_path": "/a.bicep",
            "check_result": {"result": "SKIPPED", "suppress_comment": "No comment provided"},
        }
        outcome = check.evaluate_checkov(report(skipped_checks=[skipped]), [])
        self.assertFalse(outcome.passed)
        self.assertIn("without a justification", outcome.problems[0])


class CheckovRunTest(unittest.TestCase):
    """Runs the real checkov: a file its parser rejects must fail the check, though checkov itself
    exits 0 on it."""

    def test_a_file_pycep_cannot_parse_fails_the_check(self) -> None:
        typed = """\
            type pair = {
              name: string
            }
            param pairs pair[] = []
            resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
              name: 'stberthtest'
              location: 'westeurope'
              kind: 'StorageV2'
              sku: {
                name: 'Standard_LRS'
              }
            }
            """
        with Workspace({"typed.bicep": typed}) as ws:
            self.assertTrue(check.check_parse(ws.files()).passed)
            outcome = check.check_checkov(ws.root, ws.files())
        self.assertFalse(outcome.passed)
        self.assertTrue(any("typed.bicep" in p for p in outcome.problems), outcome.problems)


VAULT = """\
param privateNetworking bool
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-berth-test'
  location: 'westeurope'
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    enablePurgeProtection: true
    // checkov:skip=CKV_AZURE_189: without privateNetworking: reached over the public endpoint.
    publicNetworkAccess: %s
    networkAcls: {
      // checkov:skip=CKV_AZURE_109: without privateNetworking: reached over the public endpoint.
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}
"""


class VariantTest(unittest.TestCase):
    """Checks 1 and 2 see each variant as it deploys: conditions on its flags resolved, and the
    suppressions that only the flag's absence justifies gone where the flag is on."""

    def test_conditions_on_the_flag_take_the_variants_branch(self) -> None:
        text = "param privateNetworking bool\nparam other bool\nvar a = privateNetworking ? 'Disabled' : 'Enabled'\nvar b = !privateNetworking ? [] : [\n  'x'\n]\nvar c = (privateNetworking) ? 1 : (privateNetworking ? 2 : 3)\nvar d = other ? 4 : 5\n"
        on = check.specialise(text, {"privateNetworking": True})
        self.assertIn("var a = 'Disabled'", on)
        self.assertIn("var b = [\n  'x'\n]", on)
        self.assertIn("var c = 1", on)
        self.assertIn("var d = other ? 4 : 5", on)
        off = check.specialise(text, {"privateNetworking": False})
        self.assertIn("var a = 'Enabled'", off)
        self.assertIn("var b = []", off)
        self.assertIn("var c = (3)", off)

    def test_suppressions_without_the_flag_are_dropped_only_where_it_is_on(self) -> None:
        text = VAULT % "privateNetworking ? 'Disabled' : 'Enabled'"
        self.assertEqual(check.specialise(text, {"privateNetworking": False}).count("checkov:skip"), 2)
        self.assertEqual(check.specialise(text, {"privateNetworking": True}).count("checkov:skip"), 0)

    def test_a_private_variant_that_stays_public_fails_checkov(self) -> None:
        """Live checkov: the vault's private branch still says 'Enabled', so the private variant,
        which has no suppression left, fails CKV_AZURE_189; the default variant passes."""
        with Workspace({"vault.bicep": VAULT % "privateNetworking ? 'Enabled' : 'Enabled'"}) as ws:
            results = {}
            for variant, values in check.VARIANTS.items():
                with tempfile.TemporaryDirectory() as scratch:
                    rendered = check.render_variant(ws.root, ws.files(), values, Path(scratch))
                    results[variant] = check.check_checkov(Path(scratch), rendered)
        self.assertTrue(results["default"].passed, results["default"].problems)
        self.assertFalse(results["private"].passed)
        self.assertTrue(any("CKV_AZURE_189" in p for p in results["private"].problems), results["private"].problems)


if __name__ == "__main__":
    unittest.main()
