"""Starts a Berth deployment and follows it with azure-core's LROBasePolling, the async
request-reply poller of the Azure SDKs (as Logic Apps and Data Factory follow a 202's Location).

Usage: lro_poll.py START_URL SPEC_FILE [KEY_HEADER]

Prints one JSON object: the status codes of every response in order, and the poller's outcome
(its final body, or the error it raised).
"""

import json
import sys

from azure.core import PipelineClient
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import HeadersPolicy, RequestIdPolicy, SansIOHTTPPolicy
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import LROBasePolling
from azure.core.rest import HttpRequest


class Recorder(SansIOHTTPPolicy):
    """Keeps each response's method, status and Retry-After."""

    def __init__(self):
        self.seen = []

    def on_response(self, request, response):
        http = response.http_response
        self.seen.append(
            {
                "method": request.http_request.method,
                "status": http.status_code,
                "retryAfter": http.headers.get("Retry-After"),
            }
        )


def main():
    start_url, spec_file = sys.argv[1], sys.argv[2]
    headers = {}
    if len(sys.argv) > 3:
        headers["x-functions-key"] = sys.argv[3]
    recorder = Recorder()
    client = PipelineClient(
        base_url=start_url,
        # The SDKs' own pipeline: LROBasePolling carries the request id from poll to poll.
        policies=[RequestIdPolicy(), HeadersPolicy(headers), recorder],
    )
    with open(spec_file, "rb") as f:
        spec = json.load(f)
    request = HttpRequest("POST", start_url, json=spec)
    initial = client._pipeline.run(request, stream=False)
    poller = LROPoller(
        client,
        initial,
        lambda pipeline_response: json.loads(pipeline_response.http_response.text()),
        LROBasePolling(timeout=1),
    )
    outcome = {}
    try:
        outcome["result"] = poller.result(timeout=120)
    except HttpResponseError as error:
        outcome["error"] = {"status": error.status_code, "message": str(error)[:300]}
    outcome["responses"] = recorder.seen
    outcome["pollerStatus"] = poller.status()
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
