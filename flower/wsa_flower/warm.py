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
import signal
import sys
import threading
import time
from dataclasses import dataclass
from logging import ERROR, INFO
from pathlib import Path

import httpx
from flwr.app import Context, Message
from flwr.app.error import Error
from flwr.cli.install import install_from_fab
from flwr.clientapp.client_app import ClientApp, LoadClientAppError
from flwr.clientapp.utils import get_load_client_app_fn
from flwr.common.config import get_project_dir
from flwr.common.constant import ErrorCode, SubStatus
from flwr.common.constant import MAX_RETRY_DELAY
from flwr.common.serde import context_from_proto, fab_from_proto, run_from_proto
from flwr.proto.node_pb2 import Node  # pylint: disable=E0611
from flwr.proto.runtime_pb2 import (  # pylint: disable=E0611
    AcquireTaskRequest,
    PullAppMessagesRequest,
    PullTaskInputRequest,
    SendTaskHeartbeatRequest,
)
from flwr.supercore import log
from flwr.supercore.app_utils import start_parent_process_monitor
from flwr.supercore.constant import TaskType
from flwr.supercore.fab import Fab
from flwr.supercore.heartbeat import HeartbeatSender
from flwr.supercore.inflatable.inflatable_protobuf_utils import (
    make_confirm_message_received_fn_protobuf,
    make_pull_object_fn_protobuf,
)
from flwr.supercore.inflatable.inflatable_utils import ObjectPullError, pull_and_inflate_object_from_tree
from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor
from flwr.supercore.retry import RetryInvoker, exponential, make_simple_http_retry_invoker
from flwr.supercore.run import Run, RunNotRunningException
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
#: where Flower would leave that task's `flwr-clientapp` waiting beside the next one's, this one
#: process would wait instead of running the next. A live run's message slower than this is lost
#: (raise it over slow links). The default of --give-up-after; Flower's own limit is two hours.
PULL_GIVE_UP = 300.0
#: Seconds a task's calls to the SuperNode are retried while it does not answer.
TASK_CALL_PATIENCE = 60.0


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
    parser.add_argument(
        "--give-up-after",
        type=float,
        default=PULL_GIVE_UP,
        help=f"seconds a task waits for its message before it is given up (default {PULL_GIVE_UP:.0f})",
    )
    args = parser.parse_args()
    if args.insecure == bool(args.root_certificates):
        parser.error("give exactly one of --insecure and --root-certificates")
    if not 0.001 <= args.poll_interval <= 60:
        parser.error(f"--poll-interval must lie in 0.001..60 seconds, not {args.poll_interval}")
    if not 1 <= args.give_up_after <= 7200:
        parser.error(f"--give-up-after must lie in 1..7200 seconds, not {args.give_up_after}")
    serve(
        runtime_api_address=args.runtime_api_address,
        insecure=args.insecure,
        certificates=validate_and_resolve_root_certificates(args.root_certificates, args.insecure),
        parent_pid=args.parent_pid,
        poll_interval=args.poll_interval,
        give_up_after=args.give_up_after,
        label=args.label,
    )


def serve(
    *,
    runtime_api_address: str,
    insecure: bool,
    certificates: bytes | None,
    parent_pid: int | None,
    poll_interval: float,
    give_up_after: float = PULL_GIVE_UP,
    label: str = "",
) -> None:
    """Asks for ClientApp tasks and runs them, one at a time, until stopped: a task that fails
    in any way is logged and the next one runs."""
    if parent_pid is not None:
        # Raises SIGINT here (a KeyboardInterrupt) when the SuperNode is gone.
        start_parent_process_monitor(parent_pid)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    def runtime_client(retry_invoker: RetryInvoker, *interceptors) -> RuntimeHttpClient:
        return RuntimeHttpClient.from_server_address(
            server_address=runtime_api_address,
            insecure=insecure,
            root_certificates=certificates,
            interceptors=list(interceptors),
            retry_invoker=retry_invoker,
        )

    tasks = runtime_client(
        make_simple_http_retry_invoker(), RuntimeVersionHttpInterceptor(component_name="SuperExec")
    )
    apps: dict[str, LoadedApp] = {}
    name = f"[wsa-lab warm client{' ' + label if label else ''}]"
    log(INFO, "%s asking %s for ClientApp tasks (pid %d)", name, runtime_api_address, os.getpid())
    try:
        while True:
            acquired = tasks.AcquireTask(
                AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP], agentapp_fab_hashes=[])
            )
            if acquired.HasField("task") and acquired.token:
                invoker = task_retry_invoker()
                client = runtime_client(
                    invoker,
                    RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
                    RuntimeTokenHttpInterceptor(acquired.token),
                )
                try:
                    run_task(client, invoker, apps, name, give_up_after)
                except (Exception, RunNotRunningException) as ex:  # pylint: disable=broad-exception-caught
                    log(ERROR, "%s task failed: %s", name, ex)
                finally:
                    client.close()
            else:
                time.sleep(poll_interval)
    except KeyboardInterrupt:
        log(INFO, "%s stopped", name)
    finally:
        tasks.close()


class MessageNotArrived(Exception):
    """The task's message did not all arrive in time."""


def pull_task_input_promptly(
    client: RuntimeHttpClient, give_up_after: float
) -> tuple[Message, Context, Run, Fab]:
    """The task's message, context, run and FAB, as Flower's `pull_task_input` pulls them, with
    short retries for the message's parts (PULL_FIRST_RETRY), for at most `give_up_after` s."""
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
    try:
        message = pull_and_inflate_object_from_tree(
            tree,
            make_pull_object_fn_protobuf(client.PullObject, node, context.run_id),
            make_confirm_message_received_fn_protobuf(client.ConfirmMessageReceived, node, context.run_id),
            return_type=Message,
            initial_backoff=PULL_FIRST_RETRY,
            backoff_cap=PULL_LONGEST_WAIT,
            max_tries_per_object=None,
            max_time=give_up_after,
        )
    except ObjectPullError as ex:
        raise MessageNotArrived(str(ex)) from ex
    # A deflated message does not carry its own ID (its object ID); Flower sets it the same way.
    message.metadata.__dict__["_message_id"] = tree.object_id
    return message, context, run, fab


def task_retry_invoker() -> RetryInvoker:
    """Retries for one task's calls: a SuperNode that does not answer, or answers 5xx, is asked
    again for up to TASK_CALL_PATIENCE s; any other refusal (a revoked token: 401) fails the call.
    Flower's own invoker answers a 401 by signalling its process to stop, right for a process that
    runs one task and wrong for this one."""

    def give_up(ex: Exception) -> bool:
        return isinstance(ex, httpx.HTTPStatusError) and ex.response.status_code < 500

    return RetryInvoker(
        wait_gen_factory=lambda: exponential(max_delay=MAX_RETRY_DELAY),
        recoverable_exceptions=(httpx.TransportError, httpx.HTTPStatusError),
        max_tries=None,
        max_time=TASK_CALL_PATIENCE,
        should_giveup=give_up,
    )


def task_heartbeat(client: RuntimeHttpClient, cancelled: threading.Event):
    """The task's heartbeat: where the SuperNode answers that the task is no longer wanted,
    `cancelled` is set (Flower's own heartbeat stops its process instead)."""
    request = SendTaskHeartbeatRequest()

    def beat() -> bool:
        try:
            answer = client.SendTaskHeartbeat(request)
        except (httpx.TransportError, httpx.HTTPStatusError):
            return False
        if not answer.success:
            cancelled.set()
        return True

    return beat


@dataclass
class LoadedApp:
    app: ClientApp
    folder: Path


def run_task(
    client: RuntimeHttpClient,
    invoker: RetryInvoker,
    apps: dict[str, LoadedApp],
    name: str,
    give_up_after: float,
) -> None:
    """Runs one task as `flwr-clientapp` does: pulls the message, runs the app (installed and
    loaded once per FAB), pushes the reply, or an error reply naming the exception, and then the
    task's status. A task the SuperNode cancelled meanwhile pushes nothing, one whose message did
    not arrive only its status; one interrupted (the SuperNode gone, SIGINT or SIGTERM) pushes its
    status once, without retries, and stops."""
    cancelled = threading.Event()
    heartbeat = HeartbeatSender(task_heartbeat(client, cancelled))
    heartbeat.start()
    message = context = reply = None
    sub_status, details = SubStatus.FAILED, "ClientApp task failed due to unknown reason"
    # Where a task's time goes, for its log line: the message's arrival, the app, the reply.
    started = time.monotonic()
    pulled = ran = started
    try:
        try:
            message, context, run, fab = pull_task_input_promptly(client, give_up_after)
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
        except MessageNotArrived as ex:
            # No reply: the SuperNode pushes replies only after it has taken a new message, and
            # one for a stopped run would take the place of the next run's.
            pulled = ran = time.monotonic()
            details = f"the task's message did not arrive: {ex}"
            log(ERROR, "%s task given up after %.0f s: %s", name, pulled - started, details)
        except Exception as ex:  # pylint: disable=broad-exception-caught
            # The reason in Flower's own words, so that the server reads it as it reads theirs.
            code, reason = ErrorCode.CLIENT_APP_RAISED_EXCEPTION, f"{type(ex)}:<'{ex}'>"
            if isinstance(ex, LoadClientAppError):
                code, reason = (
                    ErrorCode.LOAD_CLIENT_APP_EXCEPTION,
                    "An exception was raised when attempting to load `ClientApp`",
                )
            log(ERROR, "ClientApp raised an exception", exc_info=ex)
            details = reason
            if message is not None:
                reply = Message(Error(code=code, reason=reason), reply_to=message)
    except BaseException:
        # Stopping: what follows is tried once (Flower's own exit does the same).
        invoker.max_tries = 1
        raise
    finally:
        if heartbeat.is_running:
            heartbeat.stop()
        if cancelled.is_set():
            log(ERROR, "%s task cancelled by the SuperNode; nothing pushed", name)
        else:
            try:
                if reply is not None and context is not None:
                    push_message(client, reply, context)
            except Exception as ex:  # pylint: disable=broad-exception-caught
                log(ERROR, "Failed to push reply message", exc_info=ex)
            push_task_output(client=client, context=context, sub_status=sub_status, details=details)
        log(
            INFO,
            "%s task %s: message in %.2f s, app %.2f s, reply %.2f s",
            name,
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
