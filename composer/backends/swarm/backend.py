"""SwarmBackend: a project deployed as a stack of services on the Swarm the Docker endpoint manages.

The engine schedules replicas, rolls updates and restarts tasks; this backend only creates,
updates and removes services, networks, secrets and configs (composer.contract.services), and
reads them back. Images, logs, exec and copying are the Docker Engine's, inherited from
DockerBackend; they reach the tasks that run on the node composer talks to. Operations on
single containers are refused: a Swarm task is replaced, not restarted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from composer import labels
from composer.backends.docker import convert as docker_convert
from composer.backends.docker.backend import DockerBackend, _log_window, _LogPump, _networks_named
from composer.backends.docker.observe import external_network
from composer.backends.swarm import convert, observe
from composer.contract.backend import LogLine
from composer.contract.observed import ObservedState
from composer.errors import BackendError, NotFoundError, UnsupportedFeatureError
from composer.labels import STACK_NAMESPACE

if TYPE_CHECKING:
    from composer.contract.backend import (
        ContainerRef,
        ContainerSpec,
        EngineEvent,
        ExecSpec,
        ProjectSummary,
        Streams,
    )
    from composer.contract.observed import ObservedService
    from composer.contract.services import ClusterObject, ObjectKind, ServiceSpec
    from composer.spec.models import NetworkConfig

BACKEND_NAME = "swarm"
REMOVAL_TIMEOUT = 60.0
"""Seconds ``remove_service`` waits for the service's containers to go (their stop grace period
included), so that the stack's networks can be removed after it, as ``docker stack rm`` cannot."""
SINGLE_CONTAINERS = ("the swarm backend deploys services: {operation} acts on one container, and Swarm "
                     "replaces a service's tasks itself (use up, scale or down)")


class SwarmBackend(DockerBackend):
    """Deploys services on a Swarm manager; decides nothing."""

    name: ClassVar[str] = BACKEND_NAME
    deploys_services: ClassVar[bool] = True

    # --- observation ----------------------------------------------------------------------

    async def observe(
        self, project_name: str, *, external_networks: Sequence[str] = (), external_volumes: Sequence[str] = (),
        images: Sequence[str] | None = None,
    ) -> ObservedState:
        """The stack's services, their tasks (as containers), networks, volumes, and every secret
        and config (external ones included: a service may use them)."""
        del images  # each node pulls what its tasks run
        stack = {"label": f"{STACK_NAMESPACE}={project_name}"}

        def read(api: Any) -> ObservedState:
            self._check_manager(api)
            services = api.services(filters=stack) or []
            tasks = api.tasks(filters={"service": [item["ID"] for item in services]}) if services else []
            nodes = {item["ID"]: (item.get("Description") or {}).get("Hostname", "") for item in api.nodes() or []}
            by_service: dict[str, list[Any]] = {}
            for task in tasks:
                by_service.setdefault(task.get("ServiceID", ""), []).append(task)
            containers = tuple(observe.observed_task(project_name, service, task, nodes)
                               for service in services for task in by_service.get(service["ID"], [])
                               if observe.current(task))
            networks = [observe.observed_network(project_name, item) for item in api.networks(filters=stack) or []]
            networks += [external_network(item) for item in _networks_named(api, external_networks)]
            volumes = [observe.observed_volume(project_name, item)
                       for item in (api.volumes(filters=stack) or {}).get("Volumes") or []]
            objects = observe.observed_objects(project_name, "secret", api.secrets() or [])
            objects += observe.observed_objects(project_name, "config", api.configs() or [])
            return ObservedState(
                project_name, containers=containers, networks=tuple(networks), volumes=tuple(volumes),
                services=tuple(observe.observed_service(project_name, service, by_service.get(service["ID"], []))
                               for service in services),
                cluster_objects=tuple(objects),
            )

        del external_volumes  # volumes are per node: a task makes its own on first use
        found: ObservedState = await self._run("observe", read)
        return found

    def _check_manager(self, api: Any) -> None:
        swarm = (api.info() or {}).get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active":
            raise BackendError("the engine is not part of a swarm", backend_name=BACKEND_NAME, operation="observe",
                               hint="docker swarm init, or point DOCKER_HOST at a manager")
        if not swarm.get("ControlAvailable"):
            raise BackendError("the engine is a swarm worker: services are deployed through a manager",
                               backend_name=BACKEND_NAME, operation="observe",
                               hint="point DOCKER_HOST at a manager node")

    def _event_filters(self, project_name: str) -> dict[str, str]:
        """A stack's objects carry docker stack deploy's label (its tasks' containers included)."""
        return {"label": f"{STACK_NAMESPACE}={project_name}"}

    async def service_status(self, service_names: Sequence[str]) -> list[ObservedService]:
        wanted = set(service_names)

        def read(api: Any) -> list[ObservedService]:
            services = [item for item in api.services(filters={"name": sorted(wanted)}) or []
                        if (item.get("Spec") or {}).get("Name") in wanted]
            found = []
            now = observe.engine_time(api.info() or {}) if services else None  # the tasks' clock
            for service in services:
                stack = (service.get("Spec") or {}).get("Labels", {}).get(STACK_NAMESPACE, "")
                tasks = api.tasks(filters={"service": service["ID"]}) or []
                found.append(observe.observed_service(stack, service, tasks, now))
            return found

        result: list[ObservedService] = await self._run("inspect service", read)
        return result

    @contextlib.asynccontextmanager
    async def service_changes(self, service_names: Sequence[str]) -> AsyncGenerator[AsyncIterator[EngineEvent], None]:
        """The manager's events about the services (created, updated, their update's state, removed),
        the nodes (a drained or lost node moves tasks), and the state changes of the services' task
        containers on this node. Swarm reports no task events: a task on another node is seen by the
        waiter's poll."""
        wanted = frozenset(service_names)
        stream = await self._open_events({"type": ["service", "node", "container"]})
        events = self._pumped_events(stream, "events-services")
        try:
            yield observe.relevant_changes(events, wanted)
        finally:
            await events.aclose()
            stream.close()  # also when the feed was never read (its generator never started)

    # --- networks -----------------------------------------------------------------------------

    async def create_network(self, project_name: str, key: str, network_name: str, config: NetworkConfig, *,
                             config_hash: str | None = None) -> str:
        """An overlay network (unless the file names another driver), labelled as a stack's."""
        kwargs = docker_convert.network_kwargs(project_name, key, network_name, config, config_hash=config_hash)
        kwargs["driver"] = config.driver or "overlay"
        kwargs["labels"] = {**kwargs["labels"], STACK_NAMESPACE: project_name}
        kwargs["scope"] = "swarm"
        created = await self._run("create network", lambda api: api.create_network(**kwargs))
        return str(created["Id"])

    # --- services -----------------------------------------------------------------------------

    def refusals(self, spec: ServiceSpec) -> list[str]:
        """What of ``spec`` a Swarm service cannot run, one line each (empty: all of it can)."""
        return convert.refusals(spec.service)

    async def deploy_service(self, spec: ServiceSpec) -> str:
        problems = self.refusals(spec)
        if problems:
            raise UnsupportedFeatureError("; ".join(problems), backend_name=BACKEND_NAME, operation="deploy")

        def deploy(api: Any) -> str:
            object_ids = _object_ids(api, spec)
            found = _service_named(api, spec.service_name)
            if found is None:
                created = api.create_service(**convert.service_arguments(spec, object_ids))
                return str(created["ID"])
            force = int(((found.get("Spec") or {}).get("TaskTemplate") or {}).get("ForceUpdate", 0))
            arguments = convert.service_arguments(spec, object_ids, force_update=force)
            version = int(found["Version"]["Index"])
            api.update_service(found["ID"], version, fetch_current_spec=False, **arguments)
            return str(found["ID"])

        service_id: str = await self._run("deploy", deploy)
        return service_id

    async def remove_service(self, service_name: str) -> None:
        def remove(api: Any) -> None:
            try:
                api.remove_service(service_name)
            except Exception as exc:  # absent already is not an error
                if getattr(getattr(exc, "response", None), "status_code", None) != 404:
                    raise

        await self._run("remove service", remove)
        deadline = time.monotonic() + REMOVAL_TIMEOUT
        owned = {"label": f"com.docker.swarm.service.name={service_name}"}
        while time.monotonic() < deadline:  # the tasks' containers stop within their grace period
            left = await self._run("remove service", lambda api: api.containers(all=True, filters=owned))
            if not left:
                return
            await anyio.sleep(0.2)
        raise BackendError(f"the containers of service {service_name} were still there after "
                           f"{REMOVAL_TIMEOUT:g}s", backend_name=BACKEND_NAME, operation="remove service")

    async def create_cluster_object(self, item: ClusterObject) -> None:
        def create(api: Any) -> None:
            call = api.create_secret if item.kind == "secret" else api.create_config
            try:
                call(item.name, item.data, labels=dict(item.labels))
            except Exception as exc:  # the same name exists: it has this content (the name is its digest)
                if getattr(getattr(exc, "response", None), "status_code", None) != 409:
                    raise

        await self._run(f"create {item.kind}", create)

    async def remove_cluster_object(self, kind: ObjectKind, name: str) -> None:
        def remove(api: Any) -> None:
            try:
                (api.remove_secret if kind == "secret" else api.remove_config)(name)
            except Exception as exc:
                if getattr(getattr(exc, "response", None), "status_code", None) != 404:
                    raise

        await self._run(f"remove {kind}", remove)

    async def list_projects(self, *, include_stopped: bool) -> list[ProjectSummary]:
        """The stacks: services grouped by their namespace label, with their tasks' states."""
        from composer.contract.backend import ProjectSummary

        def read(api: Any) -> list[ProjectSummary]:
            services = api.services(filters={"label": STACK_NAMESPACE}) or []
            stacks: dict[str, list[str]] = {}
            for service in services:
                stack = (service.get("Spec") or {}).get("Labels", {}).get(STACK_NAMESPACE, "")
                tasks = [task for task in api.tasks(filters={"service": service["ID"]}) or [] if observe.current(task)]
                stacks.setdefault(stack, []).extend(observe.task_state(task) for task in tasks)
            return [ProjectSummary(stack, tuple(states), ()) for stack, states in sorted(stacks.items())
                    if include_stopped or "running" in states]

        found: list[ProjectSummary] = await self._run("list projects", read)
        return found

    # --- a task's container: only on the node composer talks to --------------------------------------

    async def exec_in_container(self, ref: ContainerRef, spec: ExecSpec, streams: Streams | None) -> int | None:
        """``docker exec`` reaches the containers of its own node only: a task elsewhere is refused,
        naming its node."""
        await self._require_local(ref, "exec")
        return await super().exec_in_container(ref, spec, streams)

    async def _require_local(self, ref: ContainerRef, operation: str) -> None:
        def where(api: Any) -> str | None:
            import docker.errors

            try:
                api.inspect_container(ref.container_id)
                return None
            except docker.errors.NotFound:
                pass
            task_id = ref.name.rpartition(".")[2]
            try:
                node_id = api.inspect_task(task_id).get("NodeID", "")
                node = api.inspect_node(node_id) if node_id else {}
            except docker.errors.NotFound:
                return "an unknown node"
            return str((node.get("Description") or {}).get("Hostname") or node_id)

        node = await self._run(operation, where)
        if node is not None:
            raise UnsupportedFeatureError(
                f"task {ref.name} runs on node {node}: {operation} reaches only the containers of the node composer "
                "talks to (point DOCKER_HOST at that node's engine)", backend_name=BACKEND_NAME, operation=operation)

    # --- logs: through the manager, from whichever node runs a task --------------------------------------

    def logs(
        self, refs: Sequence[ContainerRef], *, follow: bool, tail: int | None = None,
        since: float | None = None, until: float | None = None,
    ) -> AsyncGenerator[LogLine, None]:
        """The tasks' logs, read through the manager (``/tasks/{id}/logs``, as ``docker service logs``
        does), so a task on any node is read; ``until`` is not offered by Swarm's log API."""
        if until is not None:
            raise UnsupportedFeatureError("logs --until is not supported by Swarm's task logs",
                                          backend_name=BACKEND_NAME, operation="logs")
        return self._task_logs(refs, follow=follow, tail=tail, window=_log_window(since, None))

    async def _task_logs(self, refs: Sequence[ContainerRef], *, follow: bool, tail: int | None,
                         window: Mapping[str, str] | None) -> AsyncGenerator[LogLine, None]:
        def inspect(api: Any) -> list[Any]:
            return [api.inspect_task(ref.name.rpartition(".")[2]) for ref in refs]

        tasks = await self._run("logs", inspect)
        pumps = self._pumped(list(zip(refs, tasks, strict=True)), lambda api, pair, send, token: _TaskLogPump(
            api, pair[0], pair[1], follow, tail, send, token, window))
        async with aclosing(pumps) as lines:
            async for line in lines:
                yield line

    # --- single containers: refused ----------------------------------------------------------------

    def _single(self, operation: str) -> UnsupportedFeatureError:
        return UnsupportedFeatureError(SINGLE_CONTAINERS.format(operation=operation), backend_name=BACKEND_NAME,
                                       operation=operation)

    async def create_container(self, spec: ContainerSpec) -> ContainerRef:
        raise self._single("create")

    async def start_container(self, ref: ContainerRef) -> None:
        raise self._single("start")

    async def stop_container(self, ref: ContainerRef, *, grace_seconds: float) -> None:
        raise self._single("stop")

    async def kill_container(self, ref: ContainerRef, *, signal: str) -> None:
        raise self._single("kill")

    async def remove_container(self, ref: ContainerRef, *, remove_volumes: bool) -> None:
        raise self._single("rm")

    async def rename_container(self, ref: ContainerRef, new_name: str) -> None:
        raise self._single("rename")

    async def pause_container(self, ref: ContainerRef) -> None:
        raise self._single("pause")

    async def unpause_container(self, ref: ContainerRef) -> None:
        raise self._single("unpause")




class _TaskLogPump(_LogPump):
    """A task's log stream, read from the manager: the container's pump with the task's endpoint."""

    def __init__(self, api: Any, ref: ContainerRef, task: Mapping[str, Any], follow: bool, tail: int | None,
                 send: Any, token: Any, window: Mapping[str, str] | None) -> None:
        spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
        service = ref.name.split(".")[0]
        item = {"Id": task["ID"], "Name": ref.name, "Config": {"Labels": {labels.SERVICE: service},
                                                                "Tty": bool(spec.get("TTY"))}}
        super().__init__(api, item, follow, tail, send, token, window)

    def _url(self) -> str:
        return str(self._api._url("/tasks/{0}/logs", self._container_id))


def _object_ids(api: Any, spec: ServiceSpec) -> dict[tuple[str, str], str]:
    """(kind, name) -> id of the secrets and configs ``spec`` grants.

    :raises NotFoundError: one does not exist (removed since the plan was made).
    """
    ids: dict[tuple[str, str], str] = {}
    for kind in ("secret", "config"):
        names = sorted({grant.name for grant in spec.grants if grant.kind == kind})
        if not names:
            continue
        listed = (api.secrets if kind == "secret" else api.configs)(filters={"name": names}) or []
        for item in listed:
            ids[(kind, (item.get("Spec") or {}).get("Name", ""))] = str(item["ID"])
        for name in names:
            if (kind, name) not in ids:
                raise NotFoundError(f"{kind} {name} not found", backend_name=BACKEND_NAME, operation="deploy")
    return ids


def _service_named(api: Any, name: str) -> Any:
    """The service called exactly ``name`` (the engine's name filter matches prefixes), or None."""
    for item in api.services(filters={"name": name}) or []:
        if (item.get("Spec") or {}).get("Name") == name:
            return item
    return None

