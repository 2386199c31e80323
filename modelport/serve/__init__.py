"""Serving: ``modelport serve`` answers the Open Inference Protocol v2 over REST and gRPC (Triton's
clients work unchanged) and TF Serving's REST API, on one data plane with dynamic batching.

- ``repository.py``  the models (paths or Triton's repository layout), configs, Sessions
- ``batching.py``    dynamic batching: one bounded queue and worker per model instance
- ``dataplane.py``   THE data plane: every request checked, batched, run, counted
- ``codec.py``       OIP datatypes, JSON values and raw little-endian tensors
- ``rest.py``        OIP v2 REST (+ binary tensor extension) and TF Serving REST (Starlette)
- ``openapi.py``     the REST API's OpenAPI document
- ``grpc_service.py`` OIP v2 gRPC (grpc.aio) and grpc.health.v1; proto/ holds the messages
- ``server.py``      both servers on one event loop; drain on SIGTERM

Nothing here is imported until a server starts.
"""
