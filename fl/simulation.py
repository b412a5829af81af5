"""A whole federation in one process: the real ServerApp strategy and the real ClientApp,
connected by a Grid that delivers each message by calling the ClientApp directly.

No Ray, no sockets: deterministic for a given seed, and the cheapest way to run 50–100
nodes on a 2-core machine. The same code paths run on the devnet and the stacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from uuid import uuid4

from flwr.app import Context, Message, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from fl.client_app import app as client_app
from fl.federation import Federation, RoundResult
from fl.records import from_numpy
from fl.settings import RunSettings

RUN_ID = 1


class DirectGrid(Grid):
    """A Grid whose nodes are ClientApp calls in this process (node ids 1..N)."""

    def __init__(
        self, settings: RunSettings, node_overrides: dict[int, dict[str, object]] | None = None
    ) -> None:
        self._run = Run.create_empty(RUN_ID)
        # Flower stamps every Message with the identity of the task in this process.
        TaskIdentity.run_id = RUN_ID
        TaskIdentity.node_id = SUPERLINK_NODE_ID
        TaskIdentity.task_id = 1
        run_config = settings.to_run_config()
        self.contexts: dict[int, Context] = {}
        self._replies: dict[str, Message] = {}
        for partition in range(settings.num_nodes):
            node_config: dict[str, object] = {
                "partition-id": partition,
                "num-partitions": settings.num_nodes,
            }
            node_config.update((node_overrides or {}).get(partition, {}))
            self.contexts[partition + 1] = Context(
                run_id=RUN_ID,
                node_id=partition + 1,
                node_config=node_config,  # type: ignore[arg-type]
                state=RecordDict(),
                run_config=dict(run_config),
            )

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Deliver each message to its node's ClientApp now; keep the reply for pulling."""
        ids = []
        for msg in messages:
            message_id = str(uuid4())
            msg.metadata.__dict__["_message_id"] = message_id
            msg.metadata.__dict__["_src_node_id"] = SUPERLINK_NODE_ID
            msg.metadata.__dict__["_run_id"] = RUN_ID
            reply = client_app(msg, self.contexts[msg.metadata.dst_node_id])
            reply.metadata.__dict__["_src_node_id"] = msg.metadata.dst_node_id
            self._replies[message_id] = reply
            ids.append(message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))


def run_federation(
    settings: RunSettings,
    *,
    on_round: Callable[[RoundResult], None] | None = None,
    node_overrides: dict[int, dict[str, object]] | None = None,
) -> list[RoundResult]:
    """Run ``settings.num_server_rounds`` rounds and return what each round measured."""
    logging.getLogger("flwr").setLevel(logging.ERROR)
    federation = Federation(settings, on_round=on_round)
    grid = DirectGrid(settings, node_overrides)
    federation.strategy.start(
        grid=grid,
        initial_arrays=from_numpy(federation.initial_weights),
        num_rounds=settings.num_server_rounds,
        evaluate_fn=federation.evaluate,
    )
    return federation.results
