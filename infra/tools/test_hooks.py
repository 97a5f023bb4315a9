"""Tests of the azd provisioning hooks that manage BERTH_SECRETS_KEY, run against a stand-in `azd`
that records what it was asked to set. Run by infra/check.sh."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import tempfile
import unittest
from pathlib import Path

HOOKS = Path(__file__).resolve().parent.parent / "hooks"
FAKE_AZD = """#!/bin/sh
# Records `azd env set NAME VALUE` calls, one per line, in $AZD_RECORD.
printf '%s\\n' "$*" >> "$AZD_RECORD"
"""


class Hooks(unittest.TestCase):
    def setUp(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        self.dir = Path(self._dir.name)
        azd = self.dir / "azd"
        azd.write_text(FAKE_AZD, encoding="utf-8")
        azd.chmod(azd.stat().st_mode | stat.S_IXUSR)
        self.record = self.dir / "calls"
        self.record.touch()

    def tearDown(self) -> None:
        self._dir.cleanup()

    def run_hook(self, name: str, **env: str) -> subprocess.CompletedProcess[str]:
        base = {"PATH": f"{self.dir}:{os.environ['PATH']}", "AZD_RECORD": str(self.record)}
        return subprocess.run(["sh", str(HOOKS / name)], env=base | env, capture_output=True, text=True, check=True)

    def calls(self) -> list[list[str]]:
        return [line.split(" ") for line in self.record.read_text(encoding="utf-8").splitlines()]

    def test_first_provisioning_generates_a_32_byte_key_and_never_prints_it(self) -> None:
        done = self.run_hook("preprovision.sh")
        calls = self.calls()
        self.assertEqual(1, len(calls), calls)
        self.assertEqual(["env", "set", "BERTH_SECRETS_KEY"], calls[0][:3])
        key = calls[0][3]
        self.assertEqual(32, len(base64.b64decode(key, validate=True)))
        self.assertNotIn(key, done.stdout + done.stderr)

    def test_two_first_provisionings_get_different_keys(self) -> None:
        self.run_hook("preprovision.sh")
        self.run_hook("preprovision.sh")
        first, second = self.calls()
        self.assertNotEqual(first[3], second[3])

    def test_a_provisioned_environment_keeps_the_key_in_key_vault(self) -> None:
        self.run_hook("preprovision.sh", AZURE_KEY_VAULT_NAME="kv-berth-x")
        self.assertEqual([], self.calls())

    def test_a_retry_keeps_the_key_already_generated(self) -> None:
        self.run_hook("preprovision.sh", BERTH_SECRETS_KEY="c2VjcmV0")
        self.assertEqual([], self.calls())

    def test_postprovision_clears_the_local_copy(self) -> None:
        done = self.run_hook("postprovision.sh", BERTH_SECRETS_KEY="c2VjcmV0", AZURE_KEY_VAULT_NAME="kv-berth-x")
        self.assertEqual([["env", "set", "BERTH_SECRETS_KEY", ""]], self.calls())
        self.assertNotIn("c2VjcmV0", done.stdout + done.stderr)

    def test_postprovision_without_a_key_does_nothing(self) -> None:
        self.run_hook("postprovision.sh", AZURE_KEY_VAULT_NAME="kv-berth-x")
        self.assertEqual([], self.calls())


if __name__ == "__main__":
    unittest.main()
