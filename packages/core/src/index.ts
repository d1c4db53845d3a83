/**
 * @zactor/core: nodes, typed contracts, RPC and actors over the zactor transport.
 *
 * @since 0.1.0
 */

/** Actors: behaviours, spawning, stopping. @since 0.1.0 */
export * as Actor from "./Actor.ts"
/** Serializable references to actors. @since 0.1.0 */
export * as ActorRef from "./ActorRef.ts"
/** Per-call context and options. @since 0.1.0 */
export * from "./CallContext.ts"
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
/** Nodes: serving and calling. @since 0.1.0 */
export * as Node from "./Node.ts"
/** Node options. @since 0.1.0 */
export * as NodeOptions from "./NodeOptions.ts"
/** Framework errors. @since 0.1.0 */
export * from "./RpcError.ts"
