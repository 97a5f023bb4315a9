"""Drives the Azure CLI's own `az container` code against the emulator at $ACI_ENDPOINT with the
bearer token $ACI_TOKEN: `az container create --file` (the file's older apiVersion, through the
generic resources API) and `az container export` (the CLI's pinned api-version), then a create from
the exported file. `az login` cannot work offline, so the module's client factories are replaced
by SDK clients pointed at the emulator; everything else is the CLI's code. Prints one
`step value` line per result; emulator/tests/clients.rs checks them.
"""

import os
import sys
import tempfile
import types

import yaml
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.resource import ResourceManagementClient
from azure.cli.command_modules.container import custom

from common import client, report

RG = "cli-tests"
HERE = os.path.dirname(os.path.abspath(__file__))


def clients():
    aci = client(ContainerInstanceManagementClient)
    resources = client(ResourceManagementClient)
    custom.cf_container_groups = lambda *_: aci.container_groups
    custom.cf_resource = lambda *_: resources
    return aci


def main():
    aci = clients()
    report("cli-api-version", aci._config.api_version)
    created = custom._create_update_from_file(
        None, RG, None, "westus", os.path.join(HERE, "group-2019-12-01.yaml"), False).result()
    report("create-from-file", created.properties["provisioningState"])
    report("created-port", created.properties["containers"][0]["properties"]["ports"][0]["port"])

    with tempfile.TemporaryDirectory() as folder:
        exported_path = os.path.join(folder, "exported.yaml")
        custom.container_export(types.SimpleNamespace(cli_ctx=None), RG, "from-file", exported_path)
        with open(exported_path) as f:
            exported = yaml.safe_load(f)
        report("export-api-version", exported["apiVersion"])
        container = exported["properties"]["containers"][0]
        report("export-command", " ".join(container["properties"]["command"]))
        report("export-instance-view", "instanceView" in container["properties"])

        exported["name"] = "round-trip"
        with open(exported_path, "w") as f:
            yaml.safe_dump(exported, f)
        again = custom._create_update_from_file(None, RG, None, "westus", exported_path, False).result()
        report("create-from-export", again.properties["provisioningState"])

    report("groups", ",".join(sorted(g.name for g in aci.container_groups.list_by_resource_group(RG))))
    for name in ("from-file", "round-trip"):
        aci.container_groups.begin_delete(RG, name).result()


if __name__ == "__main__":
    sys.exit(main())
