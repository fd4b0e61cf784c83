"""A local stand-in for Azure's REST endpoints: the real azure-core SDK clients send through it, offline.

Each request the SDK would send over the network is recorded (method, URL, headers, JSON body)
and answered by a handler function, so tests assert on the exact REST calls. Each request is first
checked against its service's published contract (azure_contracts): one no contract allows fails the test.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qs, unquote, urlparse

import requests
from azure.core.pipeline.transport import HttpTransport, RequestsTransportResponse
from azure.core.rest import HttpRequest
from azure.core.rest._requests_basic import RestRequestsTransportResponse

from azure_contracts import check_request


@dataclass
class SentRequest:
    method: str
    url: str
    headers: dict
    body: object

    @property
    def path(self) -> str:
        return urlparse(self.url).path

    @property
    def api_version(self) -> str | None:
        return parse_qs(urlparse(self.url).query).get("api-version", [None])[0]


class FakeCredential:
    """A token credential that hands out a fixed token, so SDK clients sign requests without Azure."""

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        return AccessToken("fake-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes, options=None):
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo("fake-token", int(time.time()) + 3600)


class FakeAzureTransport(HttpTransport):
    """An azure-core transport that answers from `handler(request) -> (status, json_body)` and records requests."""

    def __init__(self, handler: Callable[[SentRequest], tuple[int, object]], contracts: bool = True) -> None:
        self.handler = handler
        self.sent: list[SentRequest] = []
        self.contracts = contracts  # every request checked against its service's contract (azure_contracts)

    def send(self, request, **kwargs):
        raw = request.body if hasattr(request, "body") else request.content
        try:
            body = json.loads(raw) if raw else None
        except (TypeError, ValueError):
            body = raw
        sent = SentRequest(request.method, request.url, dict(request.headers), body)
        self.sent.append(sent)
        if self.contracts:
            check_request(sent.method, unquote(sent.path), sent.api_version, body)
        status, payload = self.handler(sent)
        response = requests.Response()
        response.status_code = status
        response.raw = io.BytesIO(json.dumps(payload).encode() if payload is not None else b"")
        response.headers["content-type"] = "application/json"
        response.url = request.url
        if isinstance(request, HttpRequest):  # the SDK's newer request type wants the newer response type
            answer = RestRequestsTransportResponse(request=request, internal_response=response)
            if not kwargs.get("stream"):  # a streamed response (long-running operations) is read by the SDK
                answer.read()
            return answer
        if not kwargs.get("stream"):
            response._content = response.raw.read()
            response._content_consumed = True
        return RequestsTransportResponse(request, response)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *args) -> None:
        pass
