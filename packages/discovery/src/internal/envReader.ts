/**
 * Reading backend options from environment variables: an unset variable is `undefined` (the option keeps its
 * default), a malformed one fails with `InvalidOptions` naming the backend.
 */
import { Discovery } from "@zactor/core"
import { Config, Effect, Option } from "effect"

/** A reader of optional variables whose errors say `<label> environment: …`. */
export const envReader =
  (label: string) =>
  <A>(config: Config.Config<A>): Effect.Effect<A | undefined, Discovery.DiscoveryError> =>
    Config.option(config).pipe(
      Effect.map(Option.getOrUndefined),
      Effect.mapError(
        (error) =>
          new Discovery.DiscoveryError({ reason: "InvalidOptions", message: `${label} environment: ${String(error)}` }),
      ),
    )
