"""Keras's RemoteMonitor, posting from a thread of its own with a time limit."""

import json
import queue
import threading
import warnings

import keras
import numpy as np
import requests

# Keras's warning for a post that failed, kept word for word.
UNREACHABLE = "Could not reach RemoteMonitor root server at {root}"


class RemoteMonitor(keras.callbacks.RemoteMonitor):
    """`keras.callbacks.RemoteMonitor`, posting the same data without ever holding up training.

    Keras posts each epoch's logs from the training loop and waits for the
    answer with no time limit: every epoch waits for the server's answer,
    and a server that takes the connection but never answers stops training
    for good. This class hands each epoch's post to a thread of its own,
    which sends them in epoch order and gives up on one after `timeout`
    seconds without progress (connecting, or between bytes of the answer).

    A failed post warns with Keras's message (which Python's default
    warning filter shows once, not every epoch). At the end of training
    the callback waits up to `timeout` seconds for posts still under way,
    then warns how many posts failed or were never sent.

    Args:
        timeout: Seconds a post may wait for the server.
        Others: those of `keras.callbacks.RemoteMonitor`.
    """

    def __init__(self, *args, timeout=10.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.timeout = timeout
        self._posts = None
        self._sender = None
        self._failed = self._handed = self._done = 0

    def on_epoch_end(self, epoch, logs=None):
        if self._sender is None:
            self._posts = queue.Queue()
            self._failed = self._handed = self._done = 0
            self._sender = threading.Thread(target=self._send_all, args=(self._posts,), name="RemoteMonitor",
                                            daemon=True)
            self._sender.start()
        self._handed += 1
        self._posts.put(self._payload(epoch, logs))

    def on_train_end(self, logs=None):
        if self._sender is None:
            return
        self._posts.put(None)
        self._sender.join(self.timeout)
        unsent = self._handed - self._done
        if self._failed or unsent:
            warnings.warn(f"RemoteMonitor: of {self._handed} epoch posts to {self.root}, {self._failed} failed "
                          f"and {unsent} were not sent within {self.timeout:g} s of the end of training",
                          stacklevel=2)
        self._sender = None  # The thread ends on the None, or with the process.

    @staticmethod
    def _payload(epoch, logs):
        """Returns Keras's payload: the epoch and the logs, NumPy values as Python numbers."""
        send = {"epoch": epoch}
        for key, value in (logs or {}).items():
            send[key] = value.item() if isinstance(value, (np.ndarray, np.generic)) else value
        return send

    def _send_all(self, posts):
        """Posts what the training thread puts in `posts`, in order, until it puts None."""
        for send in iter(posts.get, None):
            try:
                self._post(send)
            except requests.exceptions.RequestException:
                self._failed += 1
                warnings.warn(UNREACHABLE.format(root=self.root))
            except Exception as error:  # Say so and go on with the next epoch: training is not stopped for it.
                self._failed += 1
                warnings.warn(f"RemoteMonitor: could not post epoch {send['epoch']}: {error!r}")
            self._done += 1

    def _post(self, send):
        url = self.root + self.path
        if self.send_as_json:
            requests.post(url, json=send, headers=self.headers, timeout=self.timeout)
        else:
            requests.post(url, {self.field: json.dumps(send)}, headers=self.headers, timeout=self.timeout)
