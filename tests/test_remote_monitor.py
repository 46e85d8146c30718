"""Our RemoteMonitor posts what Keras's posts, from a thread of its own, and never holds up training."""

import http.server
import json
import re
import threading
import urllib.parse
import warnings

import pytest

from kerasrun.callbacks.subclasses.remote_monitor import RemoteMonitor


class Server:
    """A local HTTP server that records each post; while `held`, it keeps every answer back."""

    def __init__(self):
        self.posts = []
        self.answered = 0
        self.held = threading.Event()
        self.release = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.posts.append((self.path, dict(self.headers), body))
                if owner.held.is_set():
                    owner.release.wait(30)
                self.send_response(200)
                self.end_headers()
                owner.answered += 1

            def log_message(self, *args):
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.root = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.http.shutdown()
        self.http.server_close()


def finish_sending():
    """Waits for the callbacks' sending threads, so that no warning of theirs comes during another test."""
    for thread in threading.enumerate():
        if thread.name == "RemoteMonitor":
            thread.join(10)


@pytest.fixture
def server():
    server = Server()
    yield server
    server.close()


def test_posts_keras_payloads_in_epoch_order_and_all_arrive_by_the_end_of_training(server):
    import numpy as np

    monitor = RemoteMonitor(root=server.root, headers={"X-Run": "7"})
    monitor.on_train_begin()
    for epoch in range(5):
        monitor.on_epoch_end(epoch, {"loss": np.float32(1.5) / (epoch + 1), "accuracy": 0.25 * epoch})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monitor.on_train_end()
    assert caught == []
    assert server.answered == 5
    bodies = [json.loads(urllib.parse.parse_qs(body.decode())["data"][0]) for _, _, body in server.posts]
    assert [body["epoch"] for body in bodies] == [0, 1, 2, 3, 4]
    assert bodies[1] == {"epoch": 1, "loss": 0.75, "accuracy": 0.25}
    assert all(path == "/publish/epoch/end/" and headers["X-Run"] == "7" for path, headers, _ in server.posts)


def test_a_server_that_never_answers_holds_up_neither_epochs_nor_the_end(server):
    server.held.set()
    monitor = RemoteMonitor(root=server.root, send_as_json=True, timeout=0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monitor.on_epoch_end(0, {"loss": 1.0})
        monitor.on_epoch_end(1, {"loss": 0.5})
        # Both epochs ended while the server still held its first answer back.
        assert server.answered == 0
        monitor.on_train_end()
        summary = str(caught[-1].message)
        server.release.set()  # Let the sending thread finish here, not during another test.
        finish_sending()
    # The end waited 0.5 s: by then the first post may have timed out, the
    # second, sent after it, cannot have.
    summary = re.fullmatch(rf"RemoteMonitor: of 2 epoch posts to {server.root}, (\d) failed and (\d) were not sent "
                           rf"within 0\.5 s of the end of training", summary)
    failed, unsent = int(summary[1]), int(summary[2])
    assert failed + unsent == 2 and unsent >= 1
    assert json.loads(server.posts[0][2]) == {"epoch": 0, "loss": 1.0}


def test_a_refused_connection_warns_and_training_goes_on():
    monitor = RemoteMonitor(root="http://127.0.0.1:9", timeout=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for epoch in range(3):
            monitor.on_epoch_end(epoch, {"loss": 1.0})
        monitor.on_train_end()
    messages = [str(warning.message) for warning in caught]
    assert messages == ["Could not reach RemoteMonitor root server at http://127.0.0.1:9"] * 3 + [
        "RemoteMonitor: of 3 epoch posts to http://127.0.0.1:9, 3 failed and 0 were not sent "
        "within 5 s of the end of training"]
