"""A warm client: the ClientApps of one SuperNode run in this one process, round after round.

Flower 1.42's SuperNode, in its default isolation, has its SuperExec start a `flwr-clientapp`
process for every message: it imports Flower (about 1.6 s of CPU here), installs the app, runs
it once and exits, and the engine process the app talks to (bridge.Engine) ends with it, so the
next round reads and splits the client's data again. With the SuperNode started with
`--isolation process`, this process takes the SuperExec's place: it asks the SuperNode's
Runtime API for ClientApp tasks as `flower-superexec` does and runs each one in itself, as
`flwr-clientapp` would (the same calls of Flower's, the same reply and the same error reply),
keeping the installed app, its engine process and the client's data from one round to the next.

    python flower/wsa_flower/warm.py --runtime-api-address 127.0.0.1:9094 --insecure [--parent-pid PID]

Run it by its path (it imports only Flower), so that the app's own modules are imported from
the FAB the SuperLink sent, as `flwr-clientapp` imports them. It ends with the SuperNode named by
--parent-pid, or on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from logging import ERROR, INFO
from pathlib import Path

from flwr.app import Context, Message
from flwr.app.error import Error
from flwr.cli.install import install_from_fab
from flwr.clientapp.client_app import ClientApp, LoadClientAppError
from flwr.clientapp.utils import get_load_client_app_fn
from flwr.common.config import get_project_dir
from flwr.common.constant import ErrorCode, SubStatus
from flwr.common.serde import context_from_proto, fab_from_proto, run_from_proto
from flwr.proto.node_pb2 import Node  # pylint: disable=E0611
from flwr.proto.runtime_pb2 import (  # pylint: disable=E0611
    AcquireTaskRequest,
    PullAppMessagesRequest,
    PullTaskInputRequest,
)
from flwr.supercore import log
from flwr.supercore.app_utils import start_parent_process_monitor
from flwr.supercore.constant import TaskType
from flwr.supercore.fab import Fab
from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
from flwr.supercore.inflatable.inflatable_protobuf_utils import (
    make_confirm_message_received_fn_protobuf,
    make_pull_object_fn_protobuf,
)
from flwr.supercore.inflatable.inflatable_utils import pull_and_inflate_object_from_tree
from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.run import Run
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.task_identity import TaskIdentity
from flwr.supercore.tls import validate_and_resolve_root_certificates
from flwr.supernode.runtime.run_clientapp import push_message, push_task_output

#: Seconds before the first retry of a message part the SuperNode has not stored yet, and the
#: longest wait between retries. Flower's defaults (1 s, doubling up to 10 s) suit a ClientApp
#: that starts seconds after its task was handed out; this one asks at once, while the SuperNode
#: is still fetching the message's parts from the SuperLink, and with those defaults a part that
#: came a moment after the first ask was waited for a second, or three, more.
PULL_FIRST_RETRY = 0.02
PULL_LONGEST_WAIT = 0.5
#: Seconds after which a task whose message has not all arrived is given up, so that the tasks
#: after it run: a message whose run was stopped (its SuperLink killed mid-round) never comes, and
#: where Flower would leave its `flwr-clientapp` waiting beside the next task's, this one process
#: would wait instead of running the next task. Messages arrive within seconds here.
PULL_GIVE_UP = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python flower/wsa_flower/warm.py",
        description="Runs a SuperNode's ClientApps in this one process (start the SuperNode with "
        "--isolation process), keeping the app and its data loaded between rounds.",
    )
    parser.add_argument(
        "--runtime-api-address",
        required=True,
        help="the SuperNode's Runtime API: the host and --port it was started with",
    )
    parser.add_argument("--insecure", action="store_true", help="plain HTTP to the Runtime API")
    parser.add_argument("--root-certificates", help="the CA of the Runtime API's TLS certificate")
    parser.add_argument("--parent-pid", type=int, help="exit when this process (the SuperNode) ends")
    parser.add_argument(
        "--label",
        default="",
        help="a name for this client in its log lines (and its command line), e.g. the SuperNode's",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.25,
        help="seconds between asks for a task when there is none (default 0.25)",
    )
    args = parser.parse_args()
    if args.insecure == bool(args.root_certificates):
        parser.error("give exactly one of --insecure and --root-certificates")
    if not 0.001 <= args.poll_interval <= 60:
        parser.error(f"--poll-interval must lie in 0.001..60 seconds, not {args.poll_interval}")
    serve(
        runtime_api_address=args.runtime_api_address,
        insecure=args.insecure,
        certificates=validate_and_resolve_root_certificates(args.root_certificates, args.insecure),
        parent_pid=args.parent_pid,
        poll_interval=args.poll_interval,
        label=args.label,
    )


def serve(
    *,
    runtime_api_address: str,
    insecure: bool,
    certificates: bytes | None,
    parent_pid: int | None,
    poll_interval: float,
    label: str = "",
) -> None:
    """Asks for ClientApp tasks and runs them, one at a time, until stopped."""
    if parent_pid is not None:
        # Raises SIGINT here (a KeyboardInterrupt) when the SuperNode is gone.
        start_parent_process_monitor(parent_pid)

    def runtime_client(*interceptors) -> RuntimeHttpClient:
        return RuntimeHttpClient.from_server_address(
            server_address=runtime_api_address,
            insecure=insecure,
            root_certificates=certificates,
            interceptors=list(interceptors),
            retry_invoker=make_simple_http_retry_invoker(),
        )

    tasks = runtime_client(RuntimeVersionHttpInterceptor(component_name="SuperExec"))
    apps: dict[str, LoadedApp] = {}
    name = f"[wsa-lab warm client{' ' + label if label else ''}]"
    log(INFO, "%s asking %s for ClientApp tasks (pid %d)", name, runtime_api_address, os.getpid())
    try:
        while True:
            acquired = tasks.AcquireTask(
                AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP], agentapp_fab_hashes=[])
            )
            if acquired.HasField("task") and acquired.token:
                client = runtime_client(
                    RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
                    RuntimeTokenHttpInterceptor(acquired.token),
                )
                try:
                    run_task(client, apps)
                finally:
                    client.close()
            else:
                time.sleep(poll_interval)
    except KeyboardInterrupt:
        log(INFO, "%s stopped", name)
    finally:
        tasks.close()


def pull_task_input_promptly(client: RuntimeHttpClient) -> tuple[Message, Context, Run, Fab]:
    """The task's message, context, run and FAB, as Flower's `pull_task_input` pulls them, with
    short retries for the message's parts (PULL_FIRST_RETRY)."""
    task = client.PullTaskInput(PullTaskInputRequest())
    TaskIdentity.task_id = task.task_id
    TaskIdentity.run_id = task.run.run_id
    TaskIdentity.node_id = task.context.node_id
    context = context_from_proto(task.context)
    run = run_from_proto(task.run)
    fab = fab_from_proto(task.fab)
    messages = client.PullMessages(PullAppMessagesRequest())
    if not messages.messages_list:
        raise RuntimeError("No messages received from Runtime API")
    node = Node(node_id=context.node_id)
    tree = messages.message_object_trees[0]
    message = pull_and_inflate_object_from_tree(
        tree,
        make_pull_object_fn_protobuf(client.PullObject, node, context.run_id),
        make_confirm_message_received_fn_protobuf(client.ConfirmMessageReceived, node, context.run_id),
        return_type=Message,
        initial_backoff=PULL_FIRST_RETRY,
        backoff_cap=PULL_LONGEST_WAIT,
        max_tries_per_object=None,
        max_time=PULL_GIVE_UP,
    )
    # A deflated message does not carry its own ID (its object ID); Flower sets it the same way.
    message.metadata.__dict__["_message_id"] = tree.object_id
    return message, context, run, fab


@dataclass
class LoadedApp:
    app: ClientApp
    folder: Path


def run_task(client: RuntimeHttpClient, apps: dict[str, LoadedApp]) -> None:
    """Runs one task as `flwr-clientapp` does: pulls the message, runs the app (installed and
    loaded once per FAB), pushes the reply, or an error reply naming the exception, and then the
    task's status."""
    heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
    heartbeat.start()
    message = context = reply = None
    sub_status, details = SubStatus.FAILED, "ClientApp task failed due to unknown reason"
    # Where a task's time goes, for its log line: the message's arrival, the app, the reply.
    started = time.monotonic()
    pulled = ran = started
    try:
        message, context, run, fab = pull_task_input_promptly(client)
        pulled = ran = time.monotonic()
        loaded = apps.get(fab.hash_str)
        if loaded is None:
            forget_apps(apps)
            install_from_fab(fab.content, skip_prompt=True)
            load = get_load_client_app_fn(default_app_ref="", app_path=None, multi_app=True)
            loaded = apps[fab.hash_str] = LoadedApp(
                app=load(run.fab_id, run.fab_version, fab.hash_str),
                folder=Path(get_project_dir(run.fab_id, run.fab_version, fab.hash_str)),
            )
        reply = loaded.app(message=message, context=context)
        ran = time.monotonic()
        sub_status, details = SubStatus.COMPLETED, ""
    except Exception as ex:  # pylint: disable=broad-exception-caught
        # The reason in Flower's own words, so that the server reads it as it reads theirs.
        code, reason = ErrorCode.CLIENT_APP_RAISED_EXCEPTION, f"{type(ex)}:<'{ex}'>"
        if isinstance(ex, LoadClientAppError):
            code, reason = (
                ErrorCode.LOAD_CLIENT_APP_EXCEPTION,
                "An exception was raised when attempting to load `ClientApp`",
            )
        if message is None:
            log(ERROR, "[wsa-lab warm client] task given up: its message did not arrive (%s)", ex)
        else:
            log(ERROR, "ClientApp raised an exception", exc_info=ex)
        details = reason
        if message is not None:
            reply = Message(Error(code=code, reason=reason), reply_to=message)
    finally:
        try:
            if reply is not None and context is not None:
                push_message(client, reply, context)
        except Exception as ex:  # pylint: disable=broad-exception-caught
            log(ERROR, "Failed to push reply message", exc_info=ex)
        push_task_output(client=client, context=context, sub_status=sub_status, details=details)
        if heartbeat.is_running:
            heartbeat.stop()
        log(
            INFO,
            "[wsa-lab warm client] task %s: message in %.2f s, app %.2f s, reply %.2f s",
            sub_status,
            pulled - started,
            ran - pulled,
            time.monotonic() - ran,
        )


def forget_apps(apps: dict[str, LoadedApp]) -> None:
    """Unloads the modules of the apps run before (another FAB: a new version of the app), so that
    the next one is imported from its own files rather than found in `sys.modules`, and ends the
    engine processes they started (bridge.close_engines)."""
    folders = [loaded.folder for loaded in apps.values()]
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin and any(Path(origin).is_relative_to(folder) for folder in folders):
            if callable(getattr(module, "close_engines", None)):
                module.close_engines()
            del sys.modules[name]
    apps.clear()


if __name__ == "__main__":
    main()
