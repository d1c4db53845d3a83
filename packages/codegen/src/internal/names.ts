// The identifiers a service generates, and the checks that keep them unique in their file.
//
// Clashes with imported names (a message called `Contract`, `Effect` or `GreeterClient`) need no check:
// protoplugin aliases a foreign import when its name is taken in the file (`Contract$1`). Clashes between
// two services' generated names cannot be aliased (both are exports users import by name), so they are errors.
import type { DescMethod, DescService } from "@bufbuild/protobuf"
import { atMethod, atService, type Problem } from "../CodegenError.ts"

/** The exported identifiers of one service. */
export interface ServiceNames {
  readonly contract: string
  readonly client: string
  readonly promiseClient: string
  readonly handlers: string
  readonly promiseHandlers: string
}

/** `Greeter` -> `GreeterContract`, `GreeterClient`, `GreeterPromiseClient`, `GreeterHandlers`, ... */
export const serviceNames = (service: DescService): ServiceNames => ({
  contract: `${service.name}Contract`,
  client: `${service.name}Client`,
  promiseClient: `${service.name}PromiseClient`,
  handlers: `${service.name}Handlers`,
  promiseHandlers: `${service.name}PromiseHandlers`,
})

/** Two services of one file whose generated names collide, e.g. `Foo` and `FooPromise` (`FooPromiseClient`). */
export const nameClashes = (services: ReadonlyArray<DescService>): Array<Problem> => {
  const owners = new Map<string, DescService>()
  const problems: Array<Problem> = []
  for (const service of services) {
    const clashes = new Map<DescService, Array<string>>()
    for (const name of Object.values(serviceNames(service))) {
      const owner = owners.get(name)
      if (owner === undefined) owners.set(name, service)
      else clashes.set(owner, [...(clashes.get(owner) ?? []), name])
    }
    for (const [owner, names] of clashes) {
      problems.push(
        atService(
          service,
          `generates ${names.join(" and ")}, which service ${owner.typeName} also generates in the same file; ` +
            "rename one of the services or move it to another file",
        ),
      )
    }
  }
  return problems
}

/**
 * Method names are the contract's keys and the wire path (`pkg.Service/Method`, as in gRPC), so they are kept
 * verbatim; reserved words such as `delete` are fine as property names. `__proto__` is not: as an object key it
 * sets the prototype instead of adding a method.
 */
export const methodNameProblems = (method: DescMethod): Array<Problem> =>
  method.name === "__proto__"
    ? [atMethod(method, "a method cannot be named __proto__ (it is not a property name in JavaScript); rename it")]
    : []
