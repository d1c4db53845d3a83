// Shared test contracts and node builders for discovery tests.

import { Contract, Discovery, Node, type NodeOptions } from "@zactor/core"
import { Effect, Exit, Schema, Scope } from "effect"

/** A service several instances serve; `whoami` says which one answered. */
export const Greeter = Contract.make("Greeter", {
  greet: Contract.unary({ payload: Schema.Struct({ name: Schema.String }), success: Schema.String }),
  whoami: Contract.unary({ payload: Schema.Struct({}), success: Schema.String }),
})

/** A second service, served later to check that records are republished. */
export const Echo = Contract.make("Echo", {
  echo: Contract.unary({ payload: Schema.Struct({ text: Schema.String }), success: Schema.String }),
})

/** A ZeroMQ node (tcp on loopback) using the given discovery, scoped. */
export const nodeWith = (discovery: Discovery.DiscoveryShape, options: NodeOptions.NodeOptions = {}) =>
  Node.makeZmq(options).pipe(Effect.provideService(Discovery.Discovery, discovery))

/** Serves Greeter on a node, answering with its id. */
export const serveGreeter = (node: Node.NodeShape) =>
  node.serve(Greeter, {
    greet: ({ name }) => Effect.succeed(`hello ${name} from ${node.id}`),
    // Slow enough that concurrent calls overlap, so least-outstanding routing spreads them.
    whoami: () => Effect.as(Effect.sleep(10), node.id),
  })

/** Runs an effect in a scope of its own, returned so the test closes it when it wants (a node's lifetime). */
export const inScope = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const value = yield* effect.pipe(Scope.provide(scope))
    return { value, close: Scope.close(scope, Exit.void) } as const
  })

/** Polls until `predicate` holds, failing after `timeoutMs`; returns the elapsed milliseconds. */
export const eventually = (predicate: () => boolean, timeoutMs: number, what: string) =>
  Effect.gen(function* () {
    const started = Date.now()
    while (!predicate()) {
      if (Date.now() - started > timeoutMs) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep(5)
    }
    return Date.now() - started
  })

/** The state of `nodeId` in a node's members view, or `absent`. */
export const stateOf = (node: Node.NodeShape, nodeId: string): string =>
  node.members().find((member) => member.nodeId === nodeId)?.state ?? "absent"
