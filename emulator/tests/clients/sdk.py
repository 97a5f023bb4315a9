"""Drives the official ACI SDK (azure-mgmt-containerinstance) at its default api-version against
the emulator at $ACI_ENDPOINT with the bearer token $ACI_TOKEN: create and poll, get, list (paged),
logs, stop, start, restart, a forbidden update, delete. Prints one `step value` line per result;
emulator/tests/clients.rs checks them. Any unexpected answer raises, and the script exits non-zero.
"""

import sys
import time

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.models import (
    Container, ContainerGroup, ResourceRequests, ResourceRequirements)

from common import client, report

RG = "sdk-tests"


def group(command, restart_policy="Always"):
    return ContainerGroup(
        location="westus",
        os_type="Linux",
        restart_policy=restart_policy,
        containers=[Container(
            name="main",
            image="busybox",
            command=["/bin/sh", "-c", command],
            resources=ResourceRequirements(requests=ResourceRequests(cpu=0.5, memory_in_gb=0.5)),
        )],
    )


def main():
    aci = client(ContainerInstanceManagementClient)
    groups = aci.container_groups
    report("api-version", aci._config.api_version)

    started = time.monotonic()
    created = groups.begin_create_or_update(RG, "job", group("echo hello from the sdk; sleep 1000")).result()
    report("create", created.provisioning_state)
    report("create-seconds", round(time.monotonic() - started, 1))

    fetched = groups.get(RG, "job")
    report("get", fetched.instance_view.state)
    for name in ("second", "third"):
        groups.begin_create_or_update(RG, name, group("sleep 1000")).result()
    report("list", ",".join(sorted(g.name for g in groups.list_by_resource_group(RG))))
    report("list-all", len(list(groups.list())))

    content = ""
    deadline = time.monotonic() + 10
    while "hello from the sdk" not in content and time.monotonic() < deadline:
        content = aci.containers.list_logs(RG, "job", "main").content or ""
        time.sleep(0.1)
    report("logs", content.strip())

    groups.stop(RG, "job")
    report("stop", groups.get(RG, "job").instance_view.state)
    groups.begin_start(RG, "job").result()
    report("start", groups.get(RG, "job").instance_view.state)
    groups.begin_restart(RG, "job").result()
    report("restart", groups.get(RG, "job").provisioning_state)

    try:
        groups.begin_create_or_update(RG, "job", group("sleep 1000", restart_policy="Never")).result()
        report("forbidden-update", "accepted")
    except HttpResponseError as error:
        report("forbidden-update", error.error.code)

    started = time.monotonic()
    for name in ("job", "second", "third"):
        groups.begin_delete(RG, name).result()
    report("delete-seconds", round(time.monotonic() - started, 1))
    try:
        groups.get(RG, "job")
        report("after-delete", "found")
    except ResourceNotFoundError as error:
        report("after-delete", error.error.code)


if __name__ == "__main__":
    sys.exit(main())
