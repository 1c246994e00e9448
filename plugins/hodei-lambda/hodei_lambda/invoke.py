"""Provisioning: a worker is one asynchronous invocation of the worker function.

The payload is a JSON object with the worker's id, the provider's id, where to connect, the
one-time token, and the job's ``env`` and ``labels`` (its secret variables merged into ``env``). A
Lambda worker runs its function: selection never sends it a job with an image or a command (its
config has no ``allowed_images``), and a request with one is refused here too. Lambda queues it and answers 202 with the invocation's request id, which becomes
the worker's ``backend_id``.

Blocking, and imports boto3 (through :mod:`hodei_lambda.aws`): the hook runs :func:`provision` in
a worker thread with ``hodei.run_sdk_call``, which imports this module there, never on the event loop.
"""

from __future__ import annotations

import json
from contextlib import ExitStack

from hodei import Deadline, JobFailed, Provider, WorkerHandle, WorkerRequest

from hodei_lambda import aws, inflight
from hodei_lambda.redaction import hidden


class InvokeError(RuntimeError):
    """Lambda did not accept the invocation; no worker runs."""


def payload(provider: Provider, request: WorkerRequest) -> bytes:
    """The event the worker function receives. Holds the token: never log it."""
    return json.dumps({
        "worker_id": request.worker_id,
        "provider_id": str(provider.id),
        "server_address": request.server_address,
        "token": request.token,
        "env": {**request.env, **request.secret_env},
        "labels": dict(request.labels),
    }).encode()


def provision(provider: Provider, request: WorkerRequest, deadline: Deadline) -> WorkerHandle:
    function = provider.config["function_name"]
    if request.image is not None or request.command:
        raise JobFailed(f"a Lambda worker runs its function {function!r}: it takes no image or command")
    try:
        with ExitStack() as secrets:
            for secret in (request.token, *request.secret_env.values()):
                secrets.enter_context(hidden(secret))
            # The hook's whole timeout, not what is left of it: clients are cached per budget.
            response = aws.client(provider, "lambda", deadline.timeout).invoke(
                FunctionName=function, InvocationType="Event", Payload=payload(provider, request))
    except Exception as exc:
        failed = aws.failure(exc)
        if failed is None:
            raise
        raise InvokeError(f"Lambda did not accept worker {request.worker_id!r} for function {function!r} "
                          f"({failed.kind.value}): {failed.text}") from None
    # Lambda answers an event with an empty body; read nothing, and free the connection.
    response["Payload"].close()
    if response.get("StatusCode") != 202:
        raise InvokeError(f"Lambda answered {response.get('StatusCode')} instead of 202 to the invocation of "
                          f"{function!r} for worker {request.worker_id!r}")
    request_id = response["ResponseMetadata"]["RequestId"]
    # Recorded here, in the thread, so that an invocation Lambda accepted is counted even when the
    # core stopped waiting for this call (see hodei.run_sdk_call).
    invocation = inflight.IN_FLIGHT.record(provider.id, request.worker_id, request_id,
                                           lifetime_seconds=provider.config["timeout_seconds"])
    return WorkerHandle(request.worker_id, request_id, {
        "function_name": function,
        "accepted_at": invocation.accepted_at.isoformat(),
    })
