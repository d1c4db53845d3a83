// Whether a message needs a required-field check after decoding. proto3 has no required fields (every field has
// a default, and presence is optional), but proto2 `required` and editions' LEGACY_REQUIRED do, and protobuf-es's
// fromBinary accepts a message that lacks them (toBinary refuses it). The generator knows statically which
// request and response types can carry such fields, so only those pay for the check.
import type { DescField, DescMessage } from "@bufbuild/protobuf"
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt"

const messageOf = (field: DescField): DescMessage | undefined => {
  switch (field.fieldKind) {
    case "message":
      return field.message
    case "list":
      return field.listKind === "message" ? field.message : undefined
    case "map":
      return field.mapKind === "message" ? field.message : undefined
    default:
      return undefined
  }
}

/** Whether `message`, or a message reachable from its fields, declares a required field. */
export const hasRequiredFields = (message: DescMessage, seen: Set<DescMessage> = new Set()): boolean => {
  if (seen.has(message)) return false
  seen.add(message)
  return message.fields.some((field) => {
    if (field.presence === FeatureSet_FieldPresence.LEGACY_REQUIRED) return true
    const nested = messageOf(field)
    return nested !== undefined && hasRequiredFields(nested, seen)
  })
}
