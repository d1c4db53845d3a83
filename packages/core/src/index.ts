/**
 * @zactor/core: nodes, typed contracts, RPC and actors over the zactor transport.
 *
 * @since 0.1.0
 */

/** Actors: behaviours, spawning, stopping. @since 0.1.0 */
export * as Actor from "./Actor.ts"
/** Serializable references to actors. @since 0.1.0 */
export * as ActorRef from "./ActorRef.ts"
/** The admin service every node serves (describe, metrics), and untyped calls. @since 0.1.0 */
export * as Admin from "./Admin.ts"
/** Per-call context and options. @since 0.1.0 */
export * from "./CallContext.ts"
/** Child specifications for supervisors: fibers, actors, any acquire/release. @since 0.1.0 */
export * as ChildSpec from "./ChildSpec.ts"
/** Circuit breakers in front of connected nodes. @since 0.1.0 */
export * as CircuitBreaker from "./CircuitBreaker.ts"
/** Service contracts from Effect Schema. @since 0.1.0 */
export * as Contract from "./Contract.ts"
/** Dead letters: messages a node gave up on. @since 0.1.0 */
export * from "./DeadLetter.ts"
/** The receiver's idempotency dedupe window. @since 0.1.0 */
export * as DedupeStore from "./DedupeStore.ts"
/** Delivery policies and retry settings. @since 0.1.0 */
export * as DeliveryPolicy from "./DeliveryPolicy.ts"
/** The discovery contract (backends live in @zactor/discovery). @since 0.1.0 */
export * as Discovery from "./Discovery.ts"
/** The wire envelope. @since 0.1.0 */
export * as Envelope from "./Envelope.ts"
/** A dedupe store shared by the processes of one host through a directory. @since 0.1.0 */
export * as FileDedupeStore from "./FileDedupeStore.ts"
/** Failure detection: peer states, heartbeat options, death watches, health pings. @since 0.1.0 */
export * as Liveness from "./Liveness.ts"
/** Structured logs (pino) bound with node, call and trace ids. @since 0.1.0 */
export * as Log from "./Log.ts"
/** Metrics snapshots and histograms. @since 0.1.0 */
export * as Metrics from "./Metrics.ts"
/** Nodes: serving and calling. @since 0.1.0 */
export * as Node from "./Node.ts"
/** Node options. @since 0.1.0 */
export * as NodeOptions from "./NodeOptions.ts"
/** OS worker processes as supervised children. @since 0.1.0 */
export * as ProcessChild from "./ProcessChild.ts"
/** Metrics in the Prometheus text format, over HTTP. @since 0.1.0 */
export * as Prometheus from "./Prometheus.ts"
/** Choosing among instances: never dead, live before suspect, least loaded. @since 0.1.0 */
export * as Routing from "./Routing.ts"
/** Framework errors. @since 0.1.0 */
export * from "./RpcError.ts"
/** Supervisors: strategies, restart intensity, backoff, events. @since 0.1.0 */
export * as Supervisor from "./Supervisor.ts"
/** Errors of supervisors, process children and worker pools. @since 0.1.0 */
export * from "./SupervisorError.ts"
/** Typed topics: declarations, the messages subscriptions emit, options. @since 0.1.0 */
export * as Topic from "./Topic.ts"
/** A node's topics: publishers and subscriptions with gap detection. @since 0.1.0 */
export * as Topics from "./Topics.ts"
/** W3C trace context carried by calls. @since 0.1.0 */
export * as TraceContext from "./TraceContext.ts"
/** Worker pools: one contract served by N supervised workers. @since 0.1.0 */
export * as WorkerPool from "./WorkerPool.ts"
/** The main of a worker process: serve, report ready, drain on SIGTERM. @since 0.1.0 */
export * as WorkerProcess from "./WorkerProcess.ts"
