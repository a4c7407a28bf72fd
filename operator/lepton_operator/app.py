"""The operator assembled: settings, kopf handlers, and the seam extensions (cost accounting) plug into.

``build_registry(settings)`` returns a fresh ``kopf.OperatorRegistry`` (tests run several side by side)
with:

* a login handler (``credentials.login``: in-cluster, ``$KUBECONFIG``, ``~/.kube/config``);
* startup: kopf settings (our finalizer name, peering, event posting), the API client, the controller,
  the ``/metrics`` server and the extensions' startup hooks and background tasks; cleanup undoes them;
* the pod informer (``informer.PodInformer``: pods labelled ``lepton.ai/job-name`` as
  ``workers.PodView``), listed before any daemon plans, and poking a job's daemon when its pods change;
  it runs while job daemons hold it (``informer.OnDemand``), so a replica kopf peering paused keeps no
  pod watch;
* the peering gate (``peering.PeeringGate``): whether this replica is the active kopf peer, for work
  outside kopf's handlers (live cost accounting idles on it; ``OperatorContext.activity``);
* one daemon per LeptonJob (``controller.Controller.run_job``) and an event handler that pokes it when
  the job changes;
* a liveness probe reporting the number of jobs handled.

``run(settings)`` runs it with kopf's runner (``lepton operator``, see ``cli``).

Extensions: each module in ``EXTENSION_MODULES`` that is installed gets ``install(hooks)`` called with
an ``OperatorHooks``; there it can register kopf handlers on ``hooks.registry``, collectors on
``hooks.metrics`` (served on ``/metrics``), and coroutines to run at startup (``on_startup``), cleanup
(``on_cleanup``) or for the operator's lifetime (``in_background``), each receiving the
``OperatorContext`` (settings, API client, LeptonJobs and worker pods seen so far, identity). Live cost
accounting (``lepton_operator.accounting``) is one. docs/notes/operator.md describes the contract.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import kopf
from prometheus_client import CollectorRegistry

from lepton_operator import credentials, naming
from lepton_operator.controller import Controller, ControllerSettings, utcnow
from lepton_operator.crd import GROUP, PLURAL, VERSION
from lepton_operator.exposition import MetricsServer
from lepton_operator.informer import OnDemand, PodInformer
from lepton_operator.kube import Endpoint, KubeClient
from lepton_operator.peering import AlwaysActive, PeeringGate, PeeringSettings
from lepton_operator.workers import PodView

logger = logging.getLogger(__name__)

EXTENSION_MODULES: tuple[str, ...] = ("lepton_operator.accounting",)
"""Modules that extend the operator when installed; each provides ``install(hooks: OperatorHooks)``."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class OperatorSettings:
    """Everything ``lepton operator`` is told at start-up; read once, passed down."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to serve; empty means all namespaces."""
    standalone: bool = False
    """Skip kopf's peering (a single replica, or development)."""
    peering_name: str = "lepton-operator"
    """KopfPeering object replicas coordinate through (used when its CRD exists, unless standalone)."""
    peering_mandatory: bool = False
    """Fail instead of running standalone when the peering CRD is missing."""
    priority: int = 0
    """Peering priority: the live replica with the highest one is active, the others wait (HA)."""
    peering_lifetime_seconds: int = 60
    """A replica silent this long is presumed dead and a waiting one takes over."""
    liveness_endpoint: str | None = None
    """kopf's liveness endpoint, e.g. http://0.0.0.0:8081/healthz."""
    metrics_host: str = "0.0.0.0"
    """Address of ``/metrics`` (all interfaces: Prometheus scrapes the pod IP)."""
    metrics_port: int | None = 8080
    """Port of ``/metrics`` (None: no metrics server; 0: any free port)."""
    kubeconfig: str | None = None
    """Explicit kubeconfig path (otherwise in-cluster, ``$KUBECONFIG``, ``~/.kube/config``)."""
    max_concurrent_requests: int = 64
    """Bound on the operator's own in-flight API requests."""
    controller: ControllerSettings = dataclasses.field(default_factory=ControllerSettings)
    extension_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Parsed command-line options, for extensions that add their own flags."""


@dataclasses.dataclass
class OperatorContext:
    """What extensions get at run time (after login)."""

    settings: OperatorSettings
    kube: KubeClient
    metrics: CollectorRegistry
    identity: str
    jobs: Mapping[tuple[str, str], Mapping[str, Any]]
    """Latest body of every LeptonJob seen, by (namespace, name); read-only."""
    informer: PodInformer
    """The worker pods' cache (``informer.ready`` is set once it has listed them all; it runs only while
    job daemons run, see ``informer.OnDemand``)."""
    clock: Callable[[], Any] = utcnow
    activity: PeeringGate | AlwaysActive = dataclasses.field(default_factory=AlwaysActive)
    """Whether this replica is the active kopf peer (``is_active()``, ``await wait_for(active)``)."""

    def pods(self, namespace: str, job: str) -> list[PodView]:
        """Worker pods of a job as last seen by the operator."""
        return self.informer.pods_of(namespace, job)


Hook = Callable[[OperatorContext], Awaitable[None]]


@dataclasses.dataclass
class OperatorHooks:
    """The seam between the lifecycle operator and its extensions (see the module docstring)."""

    registry: kopf.OperatorRegistry
    settings: OperatorSettings
    metrics: CollectorRegistry
    startup: list[Hook] = dataclasses.field(default_factory=list)
    cleanup: list[Hook] = dataclasses.field(default_factory=list)
    background: list[Hook] = dataclasses.field(default_factory=list)

    def on_startup(self, hook: Hook) -> Hook:
        self.startup.append(hook)
        return hook

    def on_cleanup(self, hook: Hook) -> Hook:
        self.cleanup.append(hook)
        return hook

    def in_background(self, hook: Hook) -> Hook:
        """Run ``hook(context)`` for the operator's lifetime (cancelled at cleanup; restarted never)."""
        self.background.append(hook)
        return hook


class Runtime:
    """Objects created at startup and shared by the handlers of one registry."""

    def __init__(self, settings: OperatorSettings, hooks: OperatorHooks) -> None:
        self.settings = settings
        self.hooks = hooks
        self.identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
        # kopf's identity in the peering object. kopf would make up one of its own (user@host/time/random)
        # that nobody else can know; ``run`` hands it this one, so the peering gate recognises itself.
        self.peering_identity = os.environ.get("POD_ID") or self.identity
        self.kube: KubeClient | None = None
        self.controller: Controller | None = None
        self.informer: PodInformer | None = None
        self.pod_cache: OnDemand | None = None
        self.activity: PeeringGate | AlwaysActive = AlwaysActive()
        self.context: OperatorContext | None = None
        self.metrics_server: MetricsServer | None = None
        self.metrics_port: int | None = None
        self.jobs: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.daemons = 0


def load_extensions(hooks: OperatorHooks, modules: tuple[str, ...] = EXTENSION_MODULES) -> list[str]:
    """Install the extensions that exist in this build; returns their names."""
    installed = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # not part of this build
            raise
        install = getattr(module, "install", None)
        if install is not None:
            install(hooks)
            installed.append(name)
    return installed


def build_registry(
    settings: OperatorSettings, *, extensions: tuple[str, ...] = EXTENSION_MODULES
) -> tuple[kopf.OperatorRegistry, Runtime]:
    registry = kopf.OperatorRegistry()
    hooks = OperatorHooks(registry=registry, settings=settings, metrics=CollectorRegistry(auto_describe=True))
    runtime = Runtime(settings, hooks)

    @kopf.on.login(id="login", registry=registry)
    async def login(**kwargs: Any) -> kopf.ConnectionInfo:
        info = credentials.login(kubeconfig=settings.kubeconfig, **kwargs)
        if runtime.kube is not None:
            runtime.kube.set_endpoint(Endpoint.from_connection_info(info))
        return info

    @kopf.on.startup(id="startup", registry=registry)
    async def startup(**kwargs: Any) -> None:
        configure_kopf(kwargs["settings"], runtime.settings)
        info = credentials.login(kubeconfig=runtime.settings.kubeconfig, settings=kwargs["settings"])

        def relogin() -> Endpoint | None:
            return Endpoint.from_connection_info(credentials.login(kubeconfig=runtime.settings.kubeconfig))

        runtime.kube = KubeClient(
            Endpoint.from_connection_info(info),
            max_concurrency=runtime.settings.max_concurrent_requests,
            on_unauthorized=relogin,
            user_agent=f"lepton-operator ({runtime.identity})",
        )
        controller_settings = runtime.settings.controller
        if not controller_settings.identity:
            controller_settings = dataclasses.replace(controller_settings, identity=runtime.identity)
        controller = runtime.controller = Controller(runtime.kube, controller_settings)
        runtime.informer = PodInformer(runtime.kube, namespaces=runtime.settings.namespaces, on_change=controller.poke)
        runtime.pod_cache = OnDemand(runtime.informer)
        peering = PeeringSettings.from_kopf(
            kwargs["settings"].peering, identity=runtime.peering_identity, namespaces=runtime.settings.namespaces
        )
        if not peering.standalone:
            gate = runtime.activity = PeeringGate(runtime.kube, peering)
            await gate.check()  # extensions start knowing whether they may work
            runtime.tasks.append(asyncio.create_task(gate.run(), name="peering gate"))
        if runtime.activity.is_active():
            runtime.pod_cache.prime(30.0)  # list pods while kopf lists the jobs (restarts act sooner)
        runtime.context = OperatorContext(
            settings=runtime.settings,
            kube=runtime.kube,
            metrics=hooks.metrics,
            identity=runtime.identity,
            jobs=runtime.jobs,
            informer=runtime.informer,
            activity=runtime.activity,
        )
        if runtime.settings.metrics_port is not None:
            runtime.metrics_server = MetricsServer(
                hooks.metrics, runtime.settings.metrics_host, runtime.settings.metrics_port
            )
            runtime.metrics_port = await runtime.metrics_server.start()
            logger.info("serving /metrics on %s:%s", runtime.settings.metrics_host, runtime.metrics_port)
        for hook in hooks.startup:
            await hook(runtime.context)
        for hook in hooks.background:
            runtime.tasks.append(asyncio.create_task(_guarded(hook, runtime.context)))

    @kopf.on.cleanup(id="cleanup", registry=registry)
    async def cleanup(**_: Any) -> None:
        for task in runtime.tasks:
            task.cancel()
        await asyncio.gather(*runtime.tasks, return_exceptions=True)
        runtime.tasks.clear()
        if runtime.pod_cache is not None:
            await runtime.pod_cache.close()
        if runtime.context is not None:
            for hook in hooks.cleanup:
                await hook(runtime.context)
        if runtime.metrics_server is not None:
            await runtime.metrics_server.stop()
        if runtime.kube is not None:
            await runtime.kube.close()

    @kopf.on.event(GROUP, VERSION, PLURAL, id="job_changed", registry=registry)
    async def job_changed(**kwargs: Any) -> None:
        key = (kwargs["namespace"], kwargs["name"])
        if kwargs["type"] == "DELETED":
            runtime.jobs.pop(key, None)
        else:
            runtime.jobs[key] = kwargs["body"]
        if runtime.controller is not None:
            runtime.controller.poke(*key)

    # A stopped daemon (job deleted, operator paused or exiting) gets 2 s to finish its step, then is cancelled.
    @kopf.daemon(
        GROUP,
        VERSION,
        PLURAL,
        id="lifecycle",
        registry=registry,
        cancellation_backoff=2.0,
        cancellation_timeout=10.0,
        backoff=5.0,
    )
    async def lepton_job(**kwargs: Any) -> None:
        body: kopf.Body = kwargs["body"]
        assert runtime.controller is not None and runtime.pod_cache is not None
        namespace, name = body.metadata.namespace or "", body.metadata.name or ""
        async with runtime.pod_cache.held() as informer:
            await informer.ready.wait()  # never plan from a partial view of the pods (restarts!)

            def pods() -> list[PodView]:
                return informer.pods_of(namespace, name)

            runtime.daemons += 1
            try:
                await runtime.controller.run_job(body, kwargs["stopped"], pods)
            finally:
                runtime.daemons -= 1

    @kopf.on.probe(id="jobs", registry=registry)
    async def jobs_probe(**_: Any) -> int:
        """Liveness probe payload: how many job daemons run in this replica."""
        return runtime.daemons

    load_extensions(hooks, extensions)
    return registry, runtime


async def _guarded(hook: Hook, context: OperatorContext) -> None:
    try:
        await hook(context)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("background task %s failed", getattr(hook, "__name__", hook))


def configure_kopf(kopf_settings: kopf.OperatorSettings, settings: OperatorSettings) -> None:
    kopf_settings.persistence.finalizer = naming.FINALIZER
    # The operator posts its own events for every transition; kopf adds only warnings and errors.
    kopf_settings.posting.level = logging.WARNING
    if not settings.peering_mandatory:
        kopf_settings.peering.name = settings.peering_name
    kopf_settings.peering.priority = settings.priority
    kopf_settings.peering.lifetime = settings.peering_lifetime_seconds
    # Watches are long-lived; a server-side timeout makes a silently dead connection heal itself.
    kopf_settings.watching.server_timeout = 300
    kopf_settings.watching.client_timeout = 330


def run(settings: OperatorSettings, *, stop_flag: Any = None, ready_flag: Any = None) -> None:
    """Run the operator in this thread until stopped (SIGINT/SIGTERM, or ``stop_flag``)."""
    registry, runtime = build_registry(settings)
    kopf.run(
        registry=registry,
        identity=cast(Any, runtime.peering_identity),  # kopf's Identity: a NewType of str it does not export
        standalone=settings.standalone or None,
        priority=settings.priority,
        peering_name=settings.peering_name if settings.peering_mandatory else None,
        liveness_endpoint=settings.liveness_endpoint,
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


def settings_from_args(args: argparse.Namespace) -> OperatorSettings:
    controller = ControllerSettings(resync_seconds=args.resync_seconds)
    return OperatorSettings(
        namespaces=tuple(args.namespace or ()),
        standalone=args.standalone,
        peering_name=args.peering or "lepton-operator",
        peering_mandatory=args.peering is not None,
        priority=args.priority,
        peering_lifetime_seconds=args.peering_lifetime,
        liveness_endpoint=args.liveness,
        metrics_host=args.metrics_host,
        metrics_port=None if args.metrics_port < 0 else args.metrics_port,
        kubeconfig=args.kubeconfig,
        max_concurrent_requests=args.max_concurrent_requests,
        controller=controller,
        extension_options=vars(args),
    )
