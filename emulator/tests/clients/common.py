"""What the client scripts share: the emulator's address and token, and how results are printed."""

import os

from azure.core.pipeline.policies import SansIOHTTPPolicy

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


class Bearer(SansIOHTTPPolicy):
    """The emulator's static token. azure-core's own bearer policy refuses plain HTTP."""

    def __init__(self, token):
        self.token = token

    def on_request(self, request):
        request.http_request.headers["Authorization"] = "Bearer " + self.token


class NoCredential:
    """Never asked for a token: `Bearer` replaces the credential's policy."""

    def get_token(self, *scopes, **kwargs):
        raise AssertionError("the credential must not be used")


def client(cls):
    """An SDK client of `cls` pointed at the emulator ($ACI_ENDPOINT, $ACI_TOKEN)."""
    return cls(NoCredential(), SUBSCRIPTION, base_url=os.environ["ACI_ENDPOINT"],
               authentication_policy=Bearer(os.environ["ACI_TOKEN"]))


def report(step, value):
    print(step, value, flush=True)
