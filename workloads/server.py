"""The reference workload's model server: what an inference microservice runs.

It loads the digits model jobyard chose from the parent job (``JY_PARENT_CHECKPOINT``)
and listens on ``JY_SERVE_HOST``:``JY_SERVE_PORT``:

* ``GET /health``: 200 once the model is loaded (jobyard's readiness check);
* ``POST /v1/infer``: ``{"input": ["data:image/png;base64,...", ...]}`` answers
  ``{"predictions": [{"label": 3, "probabilities": [...]}, ...], "model": ...}``; an input
  that is not a decodable image is a 400 naming its index.

A missing or unreadable model file is a FAILURE status event with the reason and exit
code 1 (jobyard shows it as the service's error, and does not restart a server that was
never ready). SIGTERM stops it cleanly.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from jobyard.workloads import data, images
from jobyard.workloads.context import ENV_PARENT_CHECKPOINT, EXIT_FAILURE, EXIT_SUCCESS
from jobyard.workloads.model import MLP
from jobyard.workloads.status import StatusWriter

ENV_PORT = "JY_SERVE_PORT"
ENV_HOST = "JY_SERVE_HOST"
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_INPUTS = 256


class BadInput(ValueError):
    """A request the model cannot answer: the client's 400."""


def decode(item: Any, index: int) -> bytes:
    """The bytes of a ``data:`` URI (or bare base64) image."""
    if not isinstance(item, str):
        raise BadInput(f"input[{index}]: expected a base64 image string")
    payload = item.partition(",")[2] if item.startswith("data:") else item
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadInput(f"input[{index}]: not base64 ({e})") from e


def features(image: Any, raw: bytes, index: int) -> np.ndarray[Any, Any]:
    try:
        pixels, _ = images.load(image, io.BytesIO(raw), "auto")
    except images.UnreadableImage as e:
        raise BadInput(f"input[{index}]: {e}") from e
    return data.normalise(pixels.astype(np.float64))


class Model:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.mlp, self.meta = MLP.load(path)
        if self.mlp.n_features != data.N_FEATURES or self.mlp.n_classes != len(data.CLASSES):
            raise ValueError(f"{path} is not a digits model")
        import PIL.Image  # the images extra: the server decodes images

        self.image = PIL.Image

    def predict(self, body: Any) -> dict[str, Any]:
        inputs = body.get("input") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs:
            raise BadInput('expected {"input": ["data:image/png;base64,...", ...]}')
        if len(inputs) > MAX_INPUTS:
            raise BadInput(f"at most {MAX_INPUTS} inputs per request")
        x = np.stack([features(self.image, decode(item, i), i) for i, item in enumerate(inputs)])
        probs = self.mlp.predict_proba(x)
        return {
            "model": self.path.name,
            "predictions": [
                {
                    "label": int(data.CLASSES[int(row.argmax())]),
                    "probabilities": [round(float(p), 6) for p in row],
                }
                for row in probs
            ],
        }


def handler(model: Model) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # one line per request would flood the job's log

        def _send(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/health":
                self._send(200, {"status": "ready", "model": model.path.name})
            else:
                self._send(404, {"error": f"no such path {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/v1/infer":
                self._send(404, {"error": f"no such path {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._send(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
                return
            try:
                body = json.loads(self.rfile.read(length) or b"null")
                self._send(200, model.predict(body))
            except (BadInput, json.JSONDecodeError) as e:
                self._send(400, {"error": str(e)})

    return Handler


def main() -> int:
    status = StatusWriter(Path(os.environ["JY_STATUS_FILE"]))
    path = Path(os.environ.get(ENV_PARENT_CHECKPOINT, ""))
    try:
        if not path.is_file():
            raise FileNotFoundError(f"model file {path} does not exist")
        model = Model(path)
        server = ThreadingHTTPServer(
            (os.environ.get(ENV_HOST, "127.0.0.1"), int(os.environ[ENV_PORT])), handler(model)
        )
    except (OSError, ValueError, KeyError, ImportError) as e:
        message = f"cannot serve: {e}"
        print(message, flush=True)
        status.status("FAILURE", message)
        return EXIT_FAILURE
    server.daemon_threads = True
    stop = threading.Event()

    def on_term(signum: int, frame: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    host, port = server.server_address[:2]
    message = f"serving {path.name} on {host!s}:{port}"
    print(message, flush=True)
    status.status("RUNNING", message, pid=os.getpid(), port=port)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    print("stopped", flush=True)
    return EXIT_SUCCESS


if __name__ == "__main__":
    sys.exit(main())
