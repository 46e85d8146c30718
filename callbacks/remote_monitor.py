"""RemoteMonitor: post every epoch's logs to an HTTP server."""

from kerasrun.callbacks.family import CallbackFamily
from kerasrun.core.options import Arg, Bool, Float, Str, StrList, positive, when


def _header_items(items):
    """Returns {name: value} from "Name: value" items."""
    return dict((part.strip() for part in item.split(":", 1)) for item in items)


def _check(family, values, checker):
    if not values["root"].startswith(("http://", "https://")):
        checker.fail(family.flag_name("root"), "must start with http:// or https://")
    for number, item in enumerate(values["headers"], start=1):
        name, colon, _ = item.partition(":")
        if not colon or not name.strip():
            # The item itself is not echoed: it may hold a credential.
            checker.fail(family.flag_name("headers"), f"item {number} must look like 'Name: value'")


def _adapt(values, run, config):
    values["headers"] = _header_items(values["headers"]) or None
    return values


FAMILY = CallbackFamily(
    name="remote_monitor",
    title="RemoteMonitor",
    summary="POST each epoch's logs to an HTTP server, from a thread of its own: a slow or unreachable "
            "server never holds up training, and only warns.",
    keras_class="RemoteMonitor",
    subclass="kerasrun.callbacks.subclasses.remote_monitor:RemoteMonitor",
    args=(
        Arg("root", Str(), "http://localhost:9000", "The server's root URL."),
        Arg("path", Str(), "/publish/epoch/end/", "The path the logs are posted to."),
        Arg("field", Str(), "data", "The form field holding the logs as JSON (unless send_as_json).",
            applies=when("remote_monitor_send_as_json", (False,), "--remote_monitor_send_as_json False")),
        Arg("headers", StrList(), (),
            "HTTP headers, as 'Name: value' items separated by commas. Secret: never saved or printed.",
            secret=True),
        Arg("send_as_json", Bool(), False, "Send the logs as the JSON body instead of a form field."),
    ),
    subclass_args=(
        Arg("timeout", Float(), 10.0,
            "Seconds a post may wait for the server (to connect, or between bytes of its answer) before "
            "it is given up; at the end of training, the longest wait for posts still under way.",
            positive),
    ),
    check=_check,
    adapt=_adapt,
    worker_overrides={"remote_monitor": False},
)
