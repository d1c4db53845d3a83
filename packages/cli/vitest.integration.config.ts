import { zactorVitestConfig } from "../../vitest.shared.ts"

export default zactorVitestConfig(import.meta.dirname, { integration: true })
